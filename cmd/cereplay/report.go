package main

import (
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/cereplay/cereplay/report"
)

func reportCommand() *cli.Command {
	return &cli.Command{
		Name:      "report",
		Usage:     "draw one or several runs as one self-contained HTML page of charts (or JSON)",
		ArgsUsage: "RUN [RUN...]",
		UsageText: "cereplay report RUN [RUN...] [-o report.html] [--format html|json]\n\n" +
			"Reads run folders written by replay (run.json, summary.json, timeline.jsonl, target-metrics.jsonl;\n" +
			"report/RUN.md) and draws, over seconds since each run's T0: sends and deliveries per second,\n" +
			"Publish, spec delivery and status forward latency (p50, p99), send lateness, calls in flight,\n" +
			"errors by gRPC code, agent streams connected, and each target's CPU (cores) and RSS from\n" +
			"--target-metrics. Several runs are overlaid, told apart by the dash of their lines. A header\n" +
			"gives each run's trace digest, settings, T0, outcome counts and verdict. The page needs no\n" +
			"network: charts are inline SVG, long runs downsampled (LTTB) to --max-points per line.\n\n" +
			"Examples:\n" +
			"   cereplay report runs/20261206T101500Z -o report.html\n" +
			"   # one instance against three, overlaid\n" +
			"   cereplay report runs/one-instance runs/three-instances -o scale.html\n" +
			"   cereplay report --format json runs/a | jq '.charts[].id'",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "report.html", Usage: "file to write; - for stdout"},
			&cli.StringFlag{Name: "format", Value: "html", Usage: "html or json"},
			&cli.IntFlag{Name: "max-points", Value: report.DefaultMaxPoints, Usage: "points per line at most (longer runs are downsampled)"},
		},
		Action: reportAction,
	}
}

func reportAction(c *cli.Context) error {
	if c.NArg() == 0 {
		return usagef("report: missing RUN argument (see 'cereplay report --help')")
	}
	format := c.String("format")
	if format != "html" && format != "json" {
		return usagef("report: --format %q: want html or json", format)
	}
	if c.Int("max-points") < 3 {
		return usagef("report: --max-points %d: want 3 or more", c.Int("max-points"))
	}
	runs, err := report.LoadAll(c.Args().Slice())
	if err != nil {
		return err
	}
	rep, err := report.Build(runs, c.Int("max-points"))
	if err != nil {
		return err
	}
	write := report.WriteHTML
	if format == "json" {
		write = func(w io.Writer, r *report.Report) error { return report.WriteJSON(w, r) }
	}
	out := c.String("output")
	if out == "-" {
		return write(c.App.Writer, rep)
	}
	return writeFile(out, func(w io.Writer) error { return write(w, rep) })
}

// writeFile writes a file whole or not at all: into a temporary file
// beside it, renamed into place when complete.
func writeFile(path string, write func(io.Writer) error) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	err = write(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
