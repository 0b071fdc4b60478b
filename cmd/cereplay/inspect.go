package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/maestro"
	"github.com/cereplay/cereplay/record"
)

func inspectCommand() *cli.Command {
	return &cli.Command{
		Name:      "inspect",
		Usage:     "summarise a trace: digest, provenance, consumers, counts, time span, sizes",
		ArgsUsage: "TRACE",
		UsageText: "cereplay inspect TRACE [--json] [--shards N]\n\n" +
			"The table fits an 80-column terminal: long values wrap, and event types lose the prefix\n" +
			"they share (io.open-cluster-management.works.v1alpha1.manifestbundles.), as cat --type\n" +
			"takes them. --json prints the manifest as it is.\n" +
			traceArgUsage + " inspect reads only the manifest, except with --shards:\n" +
			"then it reads the trace once and prints how replay --shard i/N splits it (clusters, events\n" +
			"and bytes per shard, and how far apart the shards are), beside a split by name hash.\n\n" +
			"Examples:\n" +
			"   cereplay inspect traces/tiny\n" +
			"   cereplay inspect --json traces/tiny | jq .digest\n" +
			"   cereplay inspect https://traces.example.com/tiny.crp\n" +
			"   cereplay inspect --shards 6 traces/guestbook-100x50",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print the manifest as JSON instead of a table"},
			&cli.IntFlag{Name: "shards", Usage: "print how replay --shard i/N splits the trace into N shards instead of the manifest"},
			digestFlag(),
		},
		Action: func(c *cli.Context) error {
			src, opts, err := traceSource(c)
			if err != nil {
				return err
			}
			if c.IsSet("shards") {
				return inspectShards(c, src, opts, c.Int("shards"))
			}
			m, err := format.ReadSourceManifest(c.Context, src, opts)
			if err != nil {
				return fmt.Errorf("inspect %s: %w", src, err)
			}
			if c.Bool("json") {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(m)
			}
			return printManifest(c.App.Writer, src, m)
		},
	}
}

// madeBy names the tool that made the trace and its version ("cereplay
// generate, version 1"); the command line goes on a row of its own.
func madeBy(p format.Provenance) string {
	if p.Version == "" {
		return p.Tool
	}
	return p.Tool + ", version " + p.Version
}

// printManifest writes the human form of a manifest: one fact per line,
// counts sorted by name so two traces can be compared with diff, and no
// line wider than an 80-column terminal. Event types of ManifestWork
// bundles lose their common prefix (what cat --type accepts too).
func printManifest(w io.Writer, dir string, m *format.Manifest) error {
	p := m.Provenance
	// Short keys beside the digest, so that it fits on its line whole.
	id := []row{{"trace", dir}, {"format", fmt.Sprintf("version %d", m.FormatVersion)}, {"digest", m.Digest},
		{"made by", madeBy(p)}}
	if p.Command != "" {
		id = append(id, row{"command", p.Command})
	}
	if p.Seed != 0 {
		id = append(id, row{"seed", strconv.FormatInt(p.Seed, 10)})
	}
	if len(p.Upstreams) > 0 {
		id = append(id, row{"from", strings.Join(p.Upstreams, ", ")})
	}
	var params []row
	for _, k := range sortedKeys(p.Params) {
		params = append(params, row{"  " + k, p.Params[k]})
	}
	// Short keys beside the names too, so that a name of 63 characters
	// (the longest a consumer's can be) is not cut.
	actors := []row{
		{"consumers", fmt.Sprintf("%d%s", len(m.Consumers), sample(m.Consumers))},
		{"sources", fmt.Sprintf("%d%s", len(m.Sources), sample(m.Sources))},
	}
	content := []row{{"records", fmt.Sprintf("%d in %s", m.Records, plural(len(m.Segments), "segment"))}}
	if m.Outcomes > 0 {
		what := "a replay's results"
		if m.Provenance.Tool == record.Tool {
			what = "the recorded Publish results"
		}
		content = append(content, row{"  outcomes", fmt.Sprintf("%d (%s: cereplay cat shows each)", m.Outcomes, what)})
	}
	for _, k := range sortedKeys(m.CountsByFlow) {
		content = append(content, row{"  flow " + k, strconv.FormatInt(m.CountsByFlow[k], 10)})
	}
	for _, k := range sortedKeys(m.CountsByType) {
		content = append(content, row{"  type " + strings.TrimPrefix(k, maestro.DataType+"."), strconv.FormatInt(m.CountsByType[k], 10)})
	}
	span := m.LastOffset - m.FirstOffset
	ratio := 0.0
	if m.CompressedBytes > 0 {
		ratio = float64(m.RawBytes) / float64(m.CompressedBytes)
	}
	content = append(content,
		row{"time span", fmt.Sprintf("%s (%s .. %s)", span.Round(time.Millisecond), m.FirstOffset, m.LastOffset)},
		row{"raw bytes", fmt.Sprintf("%d (%s)", m.RawBytes, humanBytes(m.RawBytes))},
		row{"compressed bytes", fmt.Sprintf("%d (%s)", m.CompressedBytes, humanBytes(m.CompressedBytes))},
		row{"ratio", fmt.Sprintf("%.1fx", ratio)})

	var b strings.Builder
	writeRows(&b, id)
	if len(params) > 0 {
		b.WriteString("parameters\n")
		writeRows(&b, params)
	}
	writeRows(&b, actors)
	writeRows(&b, content)
	_, err := io.WriteString(w, b.String())
	return err
}

// row is one fact of inspect's table.
type row struct{ key, value string }

// termWidth is the width inspect's table keeps to: a terminal's default.
const termWidth = 80

// maxKeyWidth bounds the key column; a longer key gets a line of its own.
const maxKeyWidth = 40

// writeRows writes rows as two columns, the values aligned two spaces after
// the longest key and wrapped at spaces (within a word only when the word
// is longer than a line) so that no line is wider than termWidth.
func writeRows(b *strings.Builder, rows []row) {
	keyWidth := 0
	for _, r := range rows {
		if n := utf8.RuneCountInString(r.key); n <= maxKeyWidth {
			keyWidth = max(keyWidth, n)
		}
	}
	indent := strings.Repeat(" ", keyWidth+2)
	for _, r := range rows {
		key := r.key
		if utf8.RuneCountInString(key) > keyWidth {
			for _, l := range wrap(key, termWidth) {
				b.WriteString(l + "\n")
			}
			key = ""
		}
		for i, l := range wrap(r.value, termWidth-len(indent)) {
			if i == 0 {
				b.WriteString(key + strings.Repeat(" ", len(indent)-utf8.RuneCountInString(key)))
			} else {
				b.WriteString(indent)
			}
			b.WriteString(l + "\n")
		}
	}
}

// wrap breaks s into lines of at most width runes, at spaces where it can.
func wrap(s string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(s) {
		for utf8.RuneCountInString(word) > width {
			if line != "" {
				lines = append(lines, line)
				line = ""
			}
			r := []rune(word)
			lines = append(lines, string(r[:width]))
			word = string(r[width:])
		}
		switch {
		case line == "":
			line = word
		case utf8.RuneCountInString(line)+1+utf8.RuneCountInString(word) <= width:
			line += " " + word
		default:
			lines = append(lines, line)
			line = word
		}
	}
	return append(lines, line)
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
