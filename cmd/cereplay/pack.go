package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/cereplay/cereplay/format"
)

func packCommand() *cli.Command {
	return &cli.Command{
		Name:      "pack",
		Usage:     "write a trace as one file (an uncompressed tar of its manifest and segments) to share or serve over HTTP",
		ArgsUsage: "TRACE",
		UsageText: "cereplay pack TRACE --out FILE [--digest sha256:...]\n\n" +
			"The packed file is an ordinary tar (tar -xf FILE -C DIR gives the folder back): manifest.json\n" +
			"first, then the segments in order, as they are. Every command that reads a trace takes it,\n" +
			"or its http(s):// URL, where it takes a folder; a URL is read as the trace is played.\n" +
			"The same trace always packs to the same bytes. pack checks each segment's size and SHA-256\n" +
			"against the manifest on the way; verify checks the rest.\n" +
			traceArgUsage + "\n\n" +
			"Examples:\n" +
			"   cereplay pack traces/tiny --out tiny.crp && cereplay verify tiny.crp\n" +
			"   cereplay pack /data/scale -o - | ssh host 'cat > /srv/traces/scale.crp'\n" +
			"   cereplay replay --digest sha256:c076... https://traces.example.com/tiny.crp",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "the packed file to write (- for stdout; required)"},
			digestFlag(),
		},
		Action: func(c *cli.Context) error {
			if c.String("out") == "" {
				return usagef("pack: --out FILE is required (see 'cereplay pack --help')")
			}
			src, opts, err := traceSource(c)
			if err != nil {
				return err
			}
			out := c.String("out")
			if out == "-" {
				w := bufio.NewWriterSize(c.App.Writer, 1<<20)
				m, err := format.Pack(c.Context, src, w, opts)
				if err == nil {
					err = w.Flush()
				}
				if err != nil {
					return fmt.Errorf("pack %s: %w", src, err)
				}
				_, err = fmt.Fprintf(c.App.ErrWriter, "packed %s: %s, digest %s\n", src, plural(len(m.Segments), "segment"), m.Digest)
				return err
			}
			m, size, err := packFile(c, src, out, opts)
			if err != nil {
				return fmt.Errorf("pack %s: %w", src, err)
			}
			_, err = fmt.Fprintf(c.App.Writer, "packed %s into %s: %s, %s, digest %s\n",
				src, out, plural(len(m.Segments), "segment"), humanBytes(size), m.Digest)
			return err
		},
	}
}

// packFile packs src into out through a temporary file beside it, renamed
// into place once complete, so out is never a partial pack.
func packFile(c *cli.Context, src, out string, opts format.OpenOptions) (*format.Manifest, int64, error) {
	f, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp-*")
	if err != nil {
		return nil, 0, err
	}
	defer os.Remove(f.Name()) // after the rename there is nothing left to remove
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	m, err := format.Pack(c.Context, src, w, opts)
	if err != nil {
		return nil, 0, err
	}
	if err := w.Flush(); err != nil {
		return nil, 0, err
	}
	size, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, 0, err
	}
	if err := f.Chmod(0o644); err != nil {
		return nil, 0, err
	}
	if err := f.Sync(); err != nil {
		return nil, 0, err
	}
	if err := f.Close(); err != nil {
		return nil, 0, err
	}
	return m, size, os.Rename(f.Name(), out)
}
