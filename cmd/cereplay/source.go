package main

import (
	"github.com/urfave/cli/v2"

	"github.com/cereplay/cereplay/format"
)

// traceArgUsage is what every command that reads a trace says about its
// TRACE argument.
const traceArgUsage = "TRACE is a trace folder, a packed trace file (cereplay pack) or the http(s):// URL of one;\n" +
	"--digest refuses any trace but the one with that digest."

// digestFlag is --digest, on every command that reads a trace.
func digestFlag() cli.Flag {
	return &cli.StringFlag{Name: "digest", Usage: "refuse the trace unless its digest is this one (sha256:..., as verify and inspect print it), before reading any record"}
}

// traceSource returns the TRACE argument and the options to open it with:
// a folder, a packed file or a URL, and the digest it must have.
func traceSource(c *cli.Context) (string, format.OpenOptions, error) {
	src, err := oneArg(c, "TRACE")
	if err != nil {
		return "", format.OpenOptions{}, err
	}
	d := c.String("digest")
	if d != "" {
		if err := format.CheckDigest(d); err != nil {
			return "", format.OpenOptions{}, usagef("%s: --digest: %v", c.Command.Name, err)
		}
	}
	return src, format.OpenOptions{Digest: d}, nil
}
