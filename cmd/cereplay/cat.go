package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

func catCommand() *cli.Command {
	return &cli.Command{
		Name:   "cat",
		Usage:  "(in progress)",
		Hidden: true,
		Action: func(*cli.Context) error { return errors.New("cat: not built yet") },
	}
}
