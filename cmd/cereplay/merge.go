package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/cereplay/cereplay/report/merge"
)

func mergeCommand() *cli.Command {
	return &cli.Command{
		Name:      "merge",
		Usage:     "make one run of the runs of a sharded replay's shards",
		ArgsUsage: "RUN...",
		UsageText: "cereplay merge RUN... --out DIR [--allow-partial]\n\n" +
			"The runs must be the shards of one sharded replay: the same trace (digest), the same\n" +
			"--start-at (T0), shards i/N of one N, each once, none missing (--allow-partial merges\n" +
			"without the missing ones, and the merged summary says which). The merged run folder has\n" +
			"every trace record's outcome once (the shard's that played it), the counts, every latency\n" +
			"histogram merged exactly, one timeline and the shards' problems; report and compare read it\n" +
			"like any other run. Exit 0 only when every shard's run was OK and none is missing.\n\n" +
			"Examples:\n" +
			"   cereplay merge runs/shard-0 runs/shard-1 runs/shard-2 --out runs/merged\n" +
			"   cereplay merge /results/run-1/shard-* --out /results/run-1/merged",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "the merged run folder to write (required)"},
			&cli.BoolFlag{Name: "allow-partial", Usage: "merge even when some shards are missing"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return usagef("merge: missing RUN arguments (see 'cereplay merge --help')")
			}
			if c.String("out") == "" {
				return usagef("merge: --out DIR is required (see 'cereplay merge --help')")
			}
			out := c.String("out")
			sum, err := merge.Merge(c.Args().Slice(), out, merge.Options{AllowPartial: c.Bool("allow-partial"), Version: version})
			if err != nil {
				return err
			}
			if err := sum.WriteText(c.App.Writer); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "  merged %s into %s\n", plural(c.NArg(), "run"), out)
			if !sum.OK {
				return fmt.Errorf("merge: %s", strings.Join(sum.Problems, "; "))
			}
			return nil
		},
	}
}
