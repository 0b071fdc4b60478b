package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

// replayCommand is being built; the issue for it replaces this file.
func replayCommand() *cli.Command {
	return &cli.Command{
		Name:   "replay",
		Usage:  "(in progress)",
		Hidden: true,
		Action: func(*cli.Context) error { return errors.New("replay: not built yet") },
	}
}
