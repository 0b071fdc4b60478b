package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/report/diff"
)

func diffCommand() *cli.Command {
	return &cli.Command{
		Name:      "diff",
		Usage:     "align two traces (or two runs' outcomes) record by record and show what differs",
		ArgsUsage: "A B",
		UsageText: "cereplay diff A B [--ignore FIELD ...] [--run-id ID | --run RUN] [--max-diffs N] [--json]\n\n" +
			"A and B are traces (folders, packed files or their URLs), or run folders (their\n" +
			"outcomes are compared). Records are aligned by record type, flow, actor, resource id,\n" +
			"event type and occurrence, not by position. What a replay legitimately changes is not\n" +
			"compared: the CloudEvent id and ce-time, ce-sequenceid, ce-resourceversion, a record's\n" +
			"offset and delay, an outcome's index and timings.\n" +
			"--ignore adds fields: a CloudEvent field or attribute (source, ce-statushash), a record\n" +
			"field (trigger, outcome.note), or a JSON path in the data (data.status.conditions leaves\n" +
			"out that member and all below it). With --run-id (or --run, which reads it from the run's\n" +
			"run.json), A's resource ids are mapped as that replay mapped them before comparing.\n\n" +
			"Prints the counts (equal, only in A, only in B, changed), a table by flow and type, and\n" +
			"the first --max-diffs differences with each field that differs (a CloudEvent field or\n" +
			"attribute, or the JSON path in the data). Exits 0 when the traces are the same, 1 when\n" +
			"they differ, 2 on bad input.\n\n" +
			"Examples:\n" +
			"   cereplay diff traces/tiny /tmp/tiny-edited\n" +
			"   cereplay diff --ignore ce-statushash --max-diffs 5 /data/scale /data/scale-v2\n" +
			"   cereplay diff --json runs/20261206-0510 runs/20261206-0620 | jq .by_flow_and_type",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "ignore", Usage: "a field not to compare (repeat, or separate with commas)"},
			&cli.StringFlag{Name: "run-id", Usage: "B was replayed with this --run-id: map A's resource ids as it did"},
			&cli.StringFlag{Name: "run", Usage: "a run folder whose run.json gives the run id, as --run-id"},
			&cli.IntFlag{Name: "max-diffs", Value: diff.DefaultMaxDiffs, Usage: "how many differences to show in detail (0: none)"},
			&cli.BoolFlag{Name: "json", Usage: "print the result as JSON"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return usagef("diff: takes two arguments, A and B, got %d (see 'cereplay diff --help')", c.NArg())
			}
			if c.Int("max-diffs") < 0 {
				return usagef("diff: --max-diffs must be 0 or more, got %d", c.Int("max-diffs"))
			}
			opt := diff.Options{Ignore: c.StringSlice("ignore"), RunID: c.String("run-id"), MaxDiffs: c.Int("max-diffs")}
			if opt.MaxDiffs == 0 {
				opt.MaxDiffs = -1
			}
			if run := c.String("run"); run != "" {
				if opt.RunID != "" {
					return usagef("diff: --run and --run-id both give the run id; use one")
				}
				id, err := diff.RunIDOf(run)
				if err != nil {
					return cli.Exit(err.Error(), 2)
				}
				opt.RunID = id
			}
			res, err := diff.Diff(c.Context, c.Args().Get(0), c.Args().Get(1), opt)
			if err != nil {
				return cli.Exit(err.Error(), 2)
			}
			if c.Bool("json") {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				enc.SetEscapeHTML(false)
				err = enc.Encode(res)
			} else {
				err = printDiff(c.App.Writer, res)
			}
			if err != nil {
				return err
			}
			if !res.Same() {
				return fmt.Errorf("diff: A and B differ: %d only in A, %d only in B, %d changed",
					res.OnlyA, res.OnlyB, res.Changed)
			}
			return nil
		},
	}
}

// outcomeMark marks the outcome records (of a replay, or of a recorder)
// apart from the events they are about.
func outcomeMark(record string) string {
	if record == format.TypeOutcome.String() {
		return " (outcome)"
	}
	return ""
}

// printDiff writes the human form of a diff: the two sides, the counts, a
// table by flow and type, then each detailed difference with its fields.
func printDiff(w io.Writer, r *diff.Result) error {
	var b strings.Builder
	fmt.Fprintf(&b, "A  %s: %d records, %s\n", r.A.Path, r.A.Records, r.A.Digest)
	fmt.Fprintf(&b, "B  %s: %d records, %s\n", r.B.Path, r.B.Records, r.B.Digest)
	if r.RunID != "" {
		fmt.Fprintf(&b, "A's resource ids mapped under run id %q\n", r.RunID)
	}
	fmt.Fprintf(&b, "not compared: %s\n", strings.Join(r.Ignored, ", "))
	if r.Same() {
		fmt.Fprintf(&b, "same: %d records equal\n", r.Equal)
		_, err := io.WriteString(w, b.String())
		return err
	}
	fmt.Fprintf(&b, "%d equal, %d only in A, %d only in B, %d changed\n\n", r.Equal, r.OnlyA, r.OnlyB, r.Changed)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "flow\ttype\tonly in A\tonly in B\tchanged\t")
	for _, g := range r.Groups {
		if g.OnlyA+g.OnlyB+g.Changed > 0 {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t\n", g.Flow, g.Type+outcomeMark(g.Record), g.OnlyA, g.OnlyB, g.Changed)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Diffs) > 0 {
		fmt.Fprintf(&b, "\ndifferences (the first %d):\n", len(r.Diffs))
	}
	for _, d := range r.Diffs {
		k := d.Key
		where := ""
		switch d.Kind {
		case diff.OnlyA:
			where = fmt.Sprintf("only in A (record %d)", d.IndexA)
		case diff.OnlyB:
			where = fmt.Sprintf("only in B (record %d)", d.IndexB)
		default:
			where = fmt.Sprintf("changed (A record %d, B record %d)", d.IndexA, d.IndexB)
		}
		fmt.Fprintf(&b, "%s: %s %s", where, k.Flow, k.Actor)
		if k.ResourceID != "" {
			fmt.Fprintf(&b, " %s", k.ResourceID)
		}
		if k.EventType != "" {
			fmt.Fprintf(&b, " %s", diff.TypeName(k.EventType))
		}
		fmt.Fprintf(&b, "%s #%d\n", outcomeMark(k.Record), k.Occurrence)
		for _, f := range d.Fields {
			if f.A == "" && f.B == "" {
				fmt.Fprintf(&b, "    %s\n", f.Name)
				continue
			}
			fmt.Fprintf(&b, "    %s: %s -> %s\n", f.Name, f.A, f.B)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
