package format

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// maxResumes bounds how many times one download of a packed trace is
// resumed after its connection failed.
const maxResumes = 5

// resumingBody is the body of a GET of a packed trace that, when the
// connection fails before the end, asks for the rest (a Range request from
// the first byte not read, If-Range the first response's validator) and
// goes on. A paced replay reads its trace for as long as it plays, and a
// long slow download is what servers and proxies cut. A server that does
// not answer with exactly the rest (206 from that byte) ends the read with
// the original error. Whatever the bytes, each segment is still checked
// against its SHA-256 before a record of it is played.
type resumingBody struct {
	ctx       context.Context
	client    *http.Client
	url       string
	validator string // ETag, else Last-Modified, of the first response
	body      io.ReadCloser
	n         int64 // bytes returned so far
	size      int64 // the whole body's, -1 when not known
	resumes   int
	err       error // sticky, once a failure could not be resumed
}

func newResumingBody(ctx context.Context, client *http.Client, url string, resp *http.Response) *resumingBody {
	v := resp.Header.Get("ETag")
	if v == "" || strings.HasPrefix(v, "W/") {
		v = resp.Header.Get("Last-Modified")
	}
	return &resumingBody{ctx: ctx, client: client, url: url, validator: v, body: resp.Body, size: resp.ContentLength}
}

func (b *resumingBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	for {
		k, err := b.body.Read(p)
		b.n += int64(k)
		if err == nil || errors.Is(err, io.EOF) && (b.size < 0 || b.n >= b.size) {
			return k, err
		}
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF // the connection ended before Content-Length
		}
		if rerr := b.resume(); rerr != nil {
			b.err = fmt.Errorf("%w (not resumed: %v)", err, rerr)
			if k > 0 {
				return k, nil
			}
			return 0, b.err
		}
		if k > 0 {
			return k, nil
		}
	}
}

// resume asks for the rest of the body after a failure.
func (b *resumingBody) resume() error {
	if b.ctx.Err() != nil {
		return b.ctx.Err()
	}
	if b.resumes >= maxResumes {
		return fmt.Errorf("resumed %d times already", b.resumes)
	}
	if b.validator == "" {
		return errors.New("the server gave no ETag or Last-Modified to resume against")
	}
	b.resumes++
	b.body.Close()
	b.body = http.NoBody
	req, err := http.NewRequestWithContext(b.ctx, http.MethodGet, b.url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-", b.n))
	req.Header.Set("If-Range", b.validator)
	resp, err := b.client.Do(req)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusPartialContent || !strings.HasPrefix(resp.Header.Get("Content-Range"), fmt.Sprintf("bytes %d-", b.n)) {
		resp.Body.Close()
		return fmt.Errorf("asked for bytes %d- again, got HTTP %s %s", b.n, resp.Status, resp.Header.Get("Content-Range"))
	}
	b.body = resp.Body
	return nil
}

func (b *resumingBody) Close() error { return b.body.Close() }
