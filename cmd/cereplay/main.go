// Command cereplay records and replays Maestro's CloudEvents-over-gRPC
// traffic. This package only parses flags and wires the library packages
// together; every capability lives in an importable package.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"
)

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

// run builds the app, runs it and maps the outcome to an exit code:
// 0 success, 1 failure, 2 usage error. Errors go to stderr as one line.
func run(args []string, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	args, err := flagsFirst(app, args)
	if err == nil {
		err = app.Run(args)
	}
	if err != nil {
		fmt.Fprintf(stderr, "cereplay: %v\n", oneLine(err))
		return exitCode(err)
	}
	return 0
}

// newApp builds the cli.App with every command. Commands are listed here in
// the order they appear in --help; each lives in its own file.
func newApp(stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:  "cereplay",
		Usage: "record and replay Maestro's CloudEvents gRPC traffic",
		Description: "cereplay generates, inspects, verifies and replays traces of the CloudEvents that\n" +
			"flow between Maestro, its sources and its agents.\n\n" +
			"Flags go before or after a command's arguments (`cereplay inspect TRACE --json`);\n" +
			"`--` ends the flags. Every flag can also be set from the environment:\n" +
			"CEREPLAY_<COMMAND>_<FLAG>, for example CEREPLAY_CAT_LIMIT=10 for `cereplay cat --limit 10`.\n" +
			"`cereplay help COMMAND` is `cereplay COMMAND --help`.",
		Writer:                 stdout,
		ErrWriter:              stderr,
		HideHelpCommand:        true,
		UseShortOptionHandling: true,
		OnUsageError:           onUsageError,
		ExitErrHandler:         func(*cli.Context, error) {}, // run() prints and exits
		Action: func(c *cli.Context) error {
			if c.Args().First() == "help" {
				return showHelp(c, c.Args().Tail())
			}
			if c.NArg() > 0 {
				return usagef("unknown command %q (see 'cereplay --help')", c.Args().First())
			}
			return cli.ShowAppHelp(c)
		},
		Commands: []*cli.Command{
			generateCommand(),
			simCommand(),
			replayCommand(),
			recordCommand(),
			inspectCommand(),
			catCommand(),
			verifyCommand(),
			packCommand(),
			reportCommand(),
			compareCommand(),
			mergeCommand(),
			diffCommand(),
			versionCommand(),
		},
	}
	applyEnvVars(app)
	for _, c := range app.Commands {
		// One line on stderr for a bad flag or environment value, not the
		// whole help on stdout (urfave/cli's default).
		c.OnUsageError = onUsageError
	}
	return app
}
