package main

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
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

// onUsageError turns a flag that does not parse (on the command line or
// in the environment) into a usage error naming the command, so run prints
// one line and exits 2.
func onUsageError(c *cli.Context, err error, isSubcommand bool) error {
	err = longFlagNames{err}
	if isSubcommand && c.Command != nil {
		err = fmt.Errorf("%s: %w", c.Command.Name, err)
	}
	return usageError{err}
}

// goFlagName is how the standard flag package names a flag in its errors
// ("for flag -limit", "not defined: -nope").
var goFlagName = regexp.MustCompile(`(for flag |for |not defined: |needs an argument: )-([a-z][a-z0-9-]+)`)

// longFlagNames writes the flags in a parse error as the help and README
// write them, --limit rather than -limit.
type longFlagNames struct{ err error }

func (e longFlagNames) Error() string { return goFlagName.ReplaceAllString(e.err.Error(), "$1--$2") }
func (e longFlagNames) Unwrap() error { return e.err }

// showHelp is `cereplay help [COMMAND]`: the app's help, or the command's.
func showHelp(c *cli.Context, args []string) error {
	switch len(args) {
	case 0:
		return cli.ShowAppHelp(c)
	case 1:
		if c.App.Command(args[0]) == nil {
			return usagef("help: unknown command %q (see 'cereplay --help')", args[0])
		}
		return cli.ShowCommandHelp(c, args[0])
	default:
		return usagef("help: takes one COMMAND argument, got %d", len(args))
	}
}

// flagsFirst moves the flags of a command, with their values, before its
// positional arguments: `cereplay inspect TRACE --json` becomes
// `cereplay inspect --json -- TRACE`. urfave/cli v2 stops reading flags at
// the first positional argument, where users of kubectl and docker expect
// flags anywhere. A flag that takes a value keeps the next argument as its
// value unless written --flag=value; "--" ends the flags, and what follows
// it stays positional even when it starts with a dash. An unknown flag is
// kept without a value, and the parser then names it. With --help the
// positional arguments are dropped: urfave/cli would read the first as the
// name of a help topic.
func flagsFirst(app *cli.App, args []string) ([]string, error) {
	if len(args) < 3 {
		return args, nil
	}
	cmd := app.Command(args[1])
	if cmd == nil || len(cmd.Subcommands) > 0 {
		return args, nil
	}
	takesValue := make(map[string]bool)
	for _, f := range cmd.Flags {
		d, ok := f.(cli.DocGenerationFlag)
		for _, name := range f.Names() {
			takesValue[name] = ok && d.TakesValue()
		}
	}
	var flags, positional []string
	help := false
	rest := args[2:]
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		switch {
		case a == "--":
			positional = append(positional, rest[i+1:]...)
			i = len(rest)
		case len(a) > 1 && a[0] == '-':
			flags = append(flags, a)
			name := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
			help = help || name == "help" || name == "h"
			if strings.Contains(name, "=") || !takesValue[name] {
				continue
			}
			if i+1 == len(rest) || rest[i+1] == "--" {
				return nil, usagef("%s: flag %s needs a value", cmd.Name, a)
			}
			i++
			flags = append(flags, rest[i])
		default:
			positional = append(positional, a)
		}
	}
	out := append(append([]string{}, args[:2]...), flags...)
	if len(positional) > 0 && !help {
		out = append(append(out, "--"), positional...)
	}
	return out, nil
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

// plural writes a count with its noun, "1 segment" and "3 segments", so a
// one-segment trace or a one-shard merge does not read as a typo.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
