package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/cereplay/cereplay/report"
)

func compareCommand() *cli.Command {
	return &cli.Command{
		Name:      "compare",
		Usage:     "compare two runs metric by metric and judge thresholds, for CI",
		ArgsUsage: "BASE NEW",
		UsageText: "cereplay compare BASE NEW [--threshold 'spec_delivery.p99=+10%' ...] [--thresholds-file FILE]\n\n" +
			"Prints a table of throughput, each latency's p50/p90/p99/p99.9 (Publish, spec delivery,\n" +
			"status forward, send lateness: exact, from the runs' HDR histograms), errors, missing\n" +
			"deliveries, and the targets' mean CPU and peak RSS (from --target-metrics), with the change\n" +
			"from BASE to NEW in %, then the verdict of each threshold. A threshold is one of:\n" +
			"   METRIC=+N%   NEW at most N% above BASE (=-N%: at most N% below, for throughput)\n" +
			"   METRIC=+N    NEW at most BASE+N, in the metric's unit (errors=+0: no new errors)\n" +
			"   METRIC<=V    NEW at most V (>= for at least); latencies take ms, s, us or ns\n" +
			"Without --thresholds-file the thresholds are Maestro's published SLO (99% of gRPC calls\n" +
			"under 500 ms: publish.p99<=500ms, errors=+0, missing=+0); --thresholds-file none drops them.\n" +
			"Exit 0 when every threshold holds, 1 when one is broken, 2 on bad input (a folder that is\n" +
			"not a run, a bad threshold, runs of different traces without --allow-different-traces).\n\n" +
			"Examples:\n" +
			"   cereplay compare runs/main runs/my-change\n" +
			"   cereplay compare --threshold 'spec_delivery.p99=+10%' --threshold 'throughput.events_per_second=-5%' runs/a runs/b\n" +
			"   cereplay compare --thresholds-file ci.thresholds --json runs/a runs/b > verdict.json",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "threshold", Usage: "a threshold to judge (repeatable), added to the file's"},
			&cli.StringFlag{Name: "thresholds-file", Usage: "file of thresholds, one per line, # comments; none: no file",
				DefaultText: "Maestro's SLO"},
			&cli.BoolFlag{Name: "allow-different-traces", Usage: "compare runs of different trace digests"},
			&cli.BoolFlag{Name: "json", Usage: "print the comparison as JSON"},
		},
		Action: compareAction,
	}
}

func compareAction(c *cli.Context) error {
	if c.NArg() != 2 {
		return usagef("compare: takes BASE and NEW run folders, got %s (see 'cereplay compare --help')", plural(c.NArg(), "argument"))
	}
	var ths []report.Threshold
	var err error
	switch f := c.String("thresholds-file"); f {
	case "":
		ths, err = report.ParseThresholds(strings.NewReader(report.DefaultThresholds), "default thresholds")
	case "none":
	default:
		fh, ferr := os.Open(f)
		if ferr != nil {
			return usagef("compare: --thresholds-file: %v", ferr)
		}
		defer fh.Close()
		ths, err = report.ParseThresholds(fh, f)
	}
	if err != nil {
		return usagef("compare: %v", err)
	}
	for _, s := range c.StringSlice("threshold") {
		t, err := report.ParseThreshold(s)
		if err != nil {
			return usagef("compare: --threshold: %v", err)
		}
		ths = append(ths, t)
	}
	runs := make([]*report.Run, 2)
	for i, dir := range c.Args().Slice() {
		if runs[i], err = report.Load(dir); err != nil {
			return usagef("compare: %v", err)
		}
	}
	cmp, err := report.Compare(runs[0], runs[1], ths, c.Bool("allow-different-traces"))
	if errors.Is(err, report.ErrDifferentTraces) || errors.Is(err, report.ErrUnknownMetric) {
		return usagef("compare: %v", err)
	}
	if err != nil {
		return err
	}
	if c.Bool("json") {
		err = report.WriteJSON(c.App.Writer, cmp)
	} else {
		err = cmp.WriteText(c.App.Writer)
	}
	if err != nil {
		return err
	}
	if !cmp.OK {
		broken := []string{}
		for _, v := range cmp.Verdicts {
			if !v.Holds {
				broken = append(broken, v.Raw)
			}
		}
		return fmt.Errorf("compare: thresholds broken: %s", strings.Join(broken, ", "))
	}
	return nil
}
