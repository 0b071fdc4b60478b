package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/cereplay/cereplay/format"
)

func inspectCommand() *cli.Command {
	return &cli.Command{
		Name:      "inspect",
		Usage:     "summarise a trace: digest, provenance, consumers, counts, time span, sizes",
		ArgsUsage: "TRACE",
		UsageText: "cereplay inspect TRACE [--json]\n\n" +
			"Examples:\n" +
			"   cereplay inspect traces/tiny\n" +
			"   cereplay inspect --json traces/tiny | jq .digest",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print the manifest as JSON instead of a table"},
		},
		Action: func(c *cli.Context) error {
			dir, err := oneArg(c, "TRACE")
			if err != nil {
				return err
			}
			r, err := format.Open(dir)
			if err != nil {
				return err
			}
			defer r.Close()
			m := r.Manifest()
			if c.Bool("json") {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(m)
			}
			return printManifest(c.App.Writer, dir, m)
		},
	}
}

// printManifest writes the human form of a manifest: one fact per line,
// counts sorted by name so two traces can be compared with diff.
func printManifest(w io.Writer, dir string, m *format.Manifest) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	p := m.Provenance
	fmt.Fprintf(tw, "trace\t%s\n", dir)
	fmt.Fprintf(tw, "format version\t%d\n", m.FormatVersion)
	fmt.Fprintf(tw, "digest\t%s\n", m.Digest)
	fmt.Fprintf(tw, "made by\t%s %s %s\n", p.Tool, p.Version, p.Command)
	if p.Seed != 0 {
		fmt.Fprintf(tw, "seed\t%d\n", p.Seed)
	}
	for _, k := range sortedKeys(p.Params) {
		fmt.Fprintf(tw, "  %s\t%s\n", k, p.Params[k])
	}
	if len(p.Upstreams) > 0 {
		fmt.Fprintf(tw, "upstreams\t%s\n", strings.Join(p.Upstreams, ", "))
	}
	fmt.Fprintf(tw, "consumers\t%d%s\n", len(m.Consumers), sample(m.Consumers))
	fmt.Fprintf(tw, "sources\t%d%s\n", len(m.Sources), sample(m.Sources))
	fmt.Fprintf(tw, "records\t%d in %d segments\n", m.Records, len(m.Segments))
	if m.Outcomes > 0 {
		fmt.Fprintf(tw, "  outcomes\t%d (a replay's results: cereplay cat shows each)\n", m.Outcomes)
	}
	for _, k := range sortedKeys(m.CountsByFlow) {
		fmt.Fprintf(tw, "  flow %s\t%d\n", k, m.CountsByFlow[k])
	}
	for _, k := range sortedKeys(m.CountsByType) {
		fmt.Fprintf(tw, "  type %s\t%d\n", k, m.CountsByType[k])
	}
	span := m.LastOffset - m.FirstOffset
	fmt.Fprintf(tw, "time span\t%s (%s .. %s)\n", span.Round(time.Millisecond), m.FirstOffset, m.LastOffset)
	ratio := 0.0
	if m.CompressedBytes > 0 {
		ratio = float64(m.RawBytes) / float64(m.CompressedBytes)
	}
	fmt.Fprintf(tw, "raw bytes\t%d (%s)\n", m.RawBytes, humanBytes(m.RawBytes))
	fmt.Fprintf(tw, "compressed bytes\t%d (%s)\n", m.CompressedBytes, humanBytes(m.CompressedBytes))
	fmt.Fprintf(tw, "ratio\t%.1fx\n", ratio)
	return tw.Flush()
}

// sample shows the first and last names of a long sorted list.
func sample(names []string) string {
	switch {
	case len(names) == 0:
		return ""
	case len(names) <= 3:
		return " (" + strings.Join(names, ", ") + ")"
	default:
		return fmt.Sprintf(" (%s, %s, ..., %s)", names[0], names[1], names[len(names)-1])
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// humanBytes formats a byte count with a binary unit.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
