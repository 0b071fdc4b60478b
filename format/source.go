package format

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
)

// OpenOptions say how a trace source is opened.
type OpenOptions struct {
	// Digest, when set ("sha256:" and 64 lowercase hex digits), refuses a
	// trace whose digest is any other, before any record is read. Since the
	// digest covers the manifest and the manifest every segment's SHA-256,
	// and each segment is checked against its SHA-256 before any of its
	// records is returned, a reader then returns only the bytes of that
	// trace.
	Digest string
	// Client fetches http(s) URLs; nil means http.DefaultClient.
	Client *http.Client
}

// CheckDigest reports whether s is a trace digest as a manifest writes
// it: "sha256:" and 64 lowercase hex digits.
func CheckDigest(s string) error {
	hexDigits, ok := strings.CutPrefix(s, "sha256:")
	if _, err := hex.DecodeString(hexDigits); !ok || err != nil || len(hexDigits) != 64 || strings.ToLower(hexDigits) != hexDigits {
		return fmt.Errorf("format: digest %q: want sha256: and 64 lowercase hex digits", s)
	}
	return nil
}

// IsURL reports whether src names a packed trace over HTTP(S).
func IsURL(src string) bool {
	return strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://")
}

// opened is a trace source whose manifest has been read and checked.
type opened struct {
	m  *Manifest
	mb []byte // manifest.json's exact bytes
	st store
}

// open opens src: a trace folder, a packed file, or the http(s) URL of a
// packed file. A URL is fetched with one GET whose body is read as the
// trace is (resumed with a Range request if its connection breaks):
// nothing is stored on disk.
func open(ctx context.Context, src string, opts OpenOptions) (*opened, error) {
	if opts.Digest != "" {
		if err := CheckDigest(opts.Digest); err != nil {
			return nil, err
		}
	}
	var o *opened
	var err error
	if IsURL(src) {
		o, err = openURL(ctx, src, opts.Client)
	} else {
		o, err = openPath(src)
	}
	if err != nil {
		return nil, err
	}
	if opts.Digest != "" && o.m.Digest != opts.Digest {
		o.st.close()
		return nil, o.st.locate(-1, fileErr("", int64(len(digestPrefix)-len("sha256:")),
			fmt.Errorf("%w: the trace is %s, want %s", ErrDigest, o.m.Digest, opts.Digest)))
	}
	return o, nil
}

func openPath(src string) (*opened, error) {
	fi, err := os.Stat(src)
	if err != nil {
		return nil, fmt.Errorf("format: open trace: %w", err)
	}
	if fi.IsDir() {
		m, b, err := readManifestDir(src)
		if err != nil {
			return nil, err
		}
		return &opened{m: m, mb: b, st: newDirStore(src, m)}, nil
	}
	f, err := os.Open(src)
	if err != nil {
		return nil, fmt.Errorf("format: open trace: %w", err)
	}
	return openPack(src, f)
}

func openURL(ctx context.Context, url string, client *http.Client) (*opened, error) {
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("format: open trace %s: %w", url, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("format: open trace: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("format: open trace %s: HTTP %s", url, resp.Status)
	}
	return openPack(url, newResumingBody(ctx, client, url, resp))
}

func openPack(name string, body io.ReadCloser) (*opened, error) {
	p := newPackStore(name, body)
	m, b, err := p.manifest()
	if err != nil {
		p.close()
		return nil, err
	}
	return &opened{m: m, mb: b, st: p}, nil
}

// OpenSource opens the trace at src for reading: a trace folder, a packed
// file (see Pack) or the http(s) URL of one. A URL is read as the records
// are, a few segments ahead of the caller; nothing goes to disk, and no
// record is returned before its segment has passed its SHA-256.
func OpenSource(ctx context.Context, src string, opts OpenOptions) (*Reader, error) {
	o, err := open(ctx, src, opts)
	if err != nil {
		return nil, err
	}
	r, err := newReader(o.m, o.st)
	if err != nil {
		o.st.close()
		return nil, err
	}
	return r, nil
}

// ReadSourceManifest reads and checks the manifest of the trace at src
// (folder, packed file or URL) without reading any segment.
func ReadSourceManifest(ctx context.Context, src string, opts OpenOptions) (*Manifest, error) {
	o, err := open(ctx, src, opts)
	if err != nil {
		return nil, err
	}
	o.st.close()
	return o.m, nil
}

// VerifySource is VerifyAll for any source OpenSource accepts; it also
// returns the manifest when it could be read. A packed file is also checked
// for anything but the manifest and the segments in order, as Pack writes
// them; in a pack, damage that breaks the archive's structure ends the
// check there.
func VerifySource(ctx context.Context, src string, opts OpenOptions) (*Manifest, []error) {
	o, err := open(ctx, src, opts)
	if err != nil {
		return nil, []error{err}
	}
	defer o.st.close()
	return o.m, verifyStore(o.m, o.st)
}

// Pack writes the trace at src (folder, packed file or URL) to w as one
// packed file: an uncompressed POSIX tar of manifest.json and then every
// segment in order, byte for byte (FORMAT.md "Packed traces"). Every
// segment's size and SHA-256 are checked on the way; the same trace always
// packs to the same bytes. It returns the trace's manifest.
func Pack(ctx context.Context, src string, w io.Writer, opts OpenOptions) (*Manifest, error) {
	o, err := open(ctx, src, opts)
	if err != nil {
		return nil, err
	}
	defer o.st.close()
	if err := writePack(w, o); err != nil {
		return nil, err
	}
	return o.m, nil
}
