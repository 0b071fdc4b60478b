package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

func inspectCommand() *cli.Command {
	return &cli.Command{
		Name:   "inspect",
		Usage:  "(in progress)",
		Hidden: true,
		Action: func(*cli.Context) error { return errors.New("inspect: not built yet") },
	}
}
