package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

// generateCommand is being built; the issue for it replaces this file.
func generateCommand() *cli.Command {
	return &cli.Command{
		Name:   "generate",
		Usage:  "(in progress)",
		Hidden: true,
		Action: func(*cli.Context) error { return errors.New("generate: not built yet") },
	}
}
