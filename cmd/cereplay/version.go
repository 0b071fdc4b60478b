package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/urfave/cli/v2"
)

// Set at link time by the Makefile: -X main.version=... -X main.commit=...
var (
	version = "dev"
	commit  = ""
)

// buildCommit returns the commit the binary was built from: the linker's
// value, else the VCS stamp Go records in the binary.
func buildCommit() string {
	if commit != "" {
		return commit
	}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:      "version",
		Usage:     "print the version and commit of this binary",
		UsageText: "cereplay version",
		Action: func(c *cli.Context) error {
			_, err := fmt.Fprintf(c.App.Writer, "cereplay %s (commit %s, %s %s/%s)\n",
				version, buildCommit(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return err
		},
	}
}
