package format

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// store is where the files of a trace come from: a folder, or a packed
// file read in order from disk or the network (pack.go). Readers and
// Verify ask for segments in order, from one goroutine, and decode them in
// parallel; only the loading is serial, so a store can be a stream.
type store interface {
	// segment returns the bytes of segment i (0-based) and the name its
	// errors give. info is what the manifest says about it (nil for a
	// lone segment). After an error that leaves the store unreadable, later
	// calls return errUnreadable.
	segment(i int, info *SegmentInfo) (b []byte, path string, err error)
	// locate rewrites a *CorruptionError found in segment i (the
	// manifest for -1, whose errors come with no file name) so that it
	// names the file a user has: the trace folder's file, or the packed
	// file and its member. Other errors and nil pass through.
	locate(i int, err error) error
	// rest checks what follows the last segment (files or members the
	// manifest does not name); called by Verify after every segment.
	rest(m *Manifest) []error
	close() error
}

// errUnreadable: an earlier error left a store unable to give more
// segments (a stream cannot skip a damaged member).
var errUnreadable = errors.New("format: trace unreadable after an earlier error")

// dirStore reads segment files from paths: a trace folder's, or one file
// for OpenSegment.
type dirStore struct {
	dir   string // "" for OpenSegment
	paths []string
}

func newDirStore(dir string, m *Manifest) *dirStore {
	st := &dirStore{dir: dir, paths: make([]string, len(m.Segments))}
	for i, s := range m.Segments {
		st.paths[i] = filepath.Join(dir, s.Name)
	}
	return st
}

func (d *dirStore) segment(i int, _ *SegmentInfo) ([]byte, string, error) {
	path := d.paths[i]
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			if d.dir == "" {
				return nil, path, fileErr(path, 0, fmt.Errorf("%w: %v", ErrMissingSegment, err))
			}
			return nil, path, missingSegment(path, i, len(d.paths))
		}
		return nil, path, fmt.Errorf("format: read segment: %w", err)
	}
	return b, path, nil
}

func (d *dirStore) locate(i int, err error) error {
	var ce *CorruptionError
	if i < 0 && errors.As(err, &ce) {
		ce.File = filepath.Join(d.dir, ManifestName)
	}
	return err
}

func (d *dirStore) rest(m *Manifest) []error { return extraFiles(d.dir, m) }

func (d *dirStore) close() error { return nil }

func missingSegment(path string, i, n int) error {
	return fileErr(path, 0, fmt.Errorf("%w: segment %d of %d named in the manifest is not there", ErrMissingSegment, i+1, n))
}
