package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/cereplay/cereplay/format"
)

func verifyCommand() *cli.Command {
	return &cli.Command{
		Name:      "verify",
		Usage:     "check a trace's checksums, framing and manifest counts",
		ArgsUsage: "TRACE",
		UsageText: "cereplay verify TRACE\n\n" +
			"Exits 0 and prints the digest when the trace is intact; exits 1 with the file,\n" +
			"byte offset and problem otherwise. Run it on a trace you received before replaying it,\n" +
			"and compare the digest with the one its author published.\n\n" +
			"Examples:\n" +
			"   cereplay verify traces/tiny\n" +
			"   cereplay verify /data/scale-3000x50 && cereplay replay /data/scale-3000x50",
		Action: func(c *cli.Context) error {
			dir, err := oneArg(c, "TRACE")
			if err != nil {
				return err
			}
			if err := format.Verify(dir); err != nil {
				return fmt.Errorf("verify %s: %w", dir, err)
			}
			r, err := format.Open(dir)
			if err != nil {
				return err
			}
			defer r.Close()
			m := r.Manifest()
			_, err = fmt.Fprintf(c.App.Writer, "ok %s: %d records in %d segments, %s raw, digest %s\n",
				dir, m.Records, len(m.Segments), humanBytes(m.RawBytes), m.Digest)
			return err
		},
	}
}
