package main

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/urfave/cli/v2"
)

// usageError marks a mistake in how cereplay was called (exit code 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usagef returns a usage error (exit code 2) with a formatted message.
func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

func onUsageError(_ *cli.Context, err error, _ bool) error {
	return usageError{err}
}

// exitCode maps an error returned by a command to the process exit code.
func exitCode(err error) int {
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	// urfave/cli reports unknown commands (as an exit error with code 3)
	// and flag parse errors as plain errors before any action runs.
	msg := err.Error()
	if strings.HasPrefix(msg, "flag provided but not defined") ||
		strings.HasPrefix(msg, "No help topic for") ||
		strings.HasPrefix(msg, "Required flag") ||
		strings.HasPrefix(msg, "invalid value") {
		return 2
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) && ec.ExitCode() != 0 {
		return ec.ExitCode()
	}
	return 1
}

// oneLine folds a multi-line error message into one line for stderr.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", " ")), " ")
}

// applyEnvVars gives every flag of every command that has none the
// environment variable CEREPLAY_<COMMAND>_<FLAG> (upper case, dashes to
// underscores), so the convention holds without repeating it per flag.
func applyEnvVars(app *cli.App) {
	for _, f := range app.Flags {
		setEnvVar(f, "CEREPLAY_"+envName(f.Names()[0]))
	}
	var walk func(prefix string, cmds []*cli.Command)
	walk = func(prefix string, cmds []*cli.Command) {
		for _, c := range cmds {
			p := prefix + envName(c.Name) + "_"
			for _, f := range c.Flags {
				setEnvVar(f, p+envName(f.Names()[0]))
			}
			walk(p, c.Subcommands)
		}
	}
	walk("CEREPLAY_", app.Commands)
}

func envName(s string) string {
	return strings.ToUpper(strings.ReplaceAll(s, "-", "_"))
}

// setEnvVar sets the EnvVars field that every urfave/cli flag struct has,
// unless the flag already names its own variables.
func setEnvVar(f cli.Flag, name string) {
	v := reflect.ValueOf(f)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return
	}
	ev := v.Elem().FieldByName("EnvVars")
	if !ev.IsValid() || !ev.CanSet() || ev.Len() > 0 {
		return
	}
	ev.Set(reflect.ValueOf([]string{name}))
}

// oneArg returns the single positional argument a command needs, or a
// usage error naming it.
func oneArg(c *cli.Context, name string) (string, error) {
	switch c.NArg() {
	case 1:
		return c.Args().First(), nil
	case 0:
		return "", usagef("%s: missing %s argument (see 'cereplay %s --help')", c.Command.Name, name, c.Command.Name)
	default:
		return "", usagef("%s: takes one %s argument, got %d", c.Command.Name, name, c.NArg())
	}
}
