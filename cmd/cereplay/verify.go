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
			"and compare the digest with the one its author published (or give it as --digest).\n" +
			traceArgUsage + "\n\n" +
			"Examples:\n" +
			"   cereplay verify traces/tiny\n" +
			"   cereplay verify /data/scale-3000x50 && cereplay replay /data/scale-3000x50\n" +
			"   cereplay verify --digest sha256:c076... https://traces.example.com/tiny.crp",
		Flags: []cli.Flag{digestFlag()},
		Action: func(c *cli.Context) error {
			src, opts, err := traceSource(c)
			if err != nil {
				return err
			}
			m, errs := format.VerifySource(c.Context, src, opts)
			if len(errs) > 0 {
				return fmt.Errorf("verify %s: %w", src, errs[0])
			}
			_, err = fmt.Fprintf(c.App.Writer, "ok %s: %d records in %s, %s raw, digest %s\n",
				src, m.Records, plural(len(m.Segments), "segment"), humanBytes(m.RawBytes), m.Digest)
			return err
		},
	}
}
