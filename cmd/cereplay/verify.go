package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

func verifyCommand() *cli.Command {
	return &cli.Command{
		Name:   "verify",
		Usage:  "(in progress)",
		Hidden: true,
		Action: func(*cli.Context) error { return errors.New("verify: not built yet") },
	}
}
