package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

// simCommand is being built; the issue for it replaces this file.
func simCommand() *cli.Command {
	return &cli.Command{
		Name:   "sim",
		Usage:  "(in progress)",
		Hidden: true,
		Action: func(*cli.Context) error { return errors.New("sim: not built yet") },
	}
}
