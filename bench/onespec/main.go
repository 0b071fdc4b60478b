// Command onespec writes the first spec event of a trace as the wire bytes
// of a PublishRequest, the message ghz sends with --binary-file in
// bench/ghz.sh, so ghz and cereplay publish the same specs. It prints the
// request's size and the mean request size of the first -n spec events
// (those `cereplay replay --limit N` publishes), to show they are alike.
//
// Usage: go run ./bench/onespec -o spec.bin [-n N] TRACE
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/maestro"
	"github.com/cereplay/cereplay/maestro/wire"
)

func main() {
	out := flag.String("o", "", "file to write the PublishRequest to (required)")
	n := flag.Int64("n", 1, "spec events to take the mean request size of")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: onespec -o FILE [-n N] TRACE")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *out == "" || flag.NArg() != 1 || *n < 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(flag.Arg(0), *out, *n, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "onespec:", err)
		os.Exit(1)
	}
}

// run writes the first spec of trace to out as a PublishRequest and
// prints its size and the mean size of the first n specs to w.
func run(trace, out string, n int64, w io.Writer) error {
	rd, err := format.OpenSource(context.Background(), trace, format.OpenOptions{})
	if err != nil {
		return fmt.Errorf("open trace %s: %w", trace, err)
	}
	defer rd.Close()
	var (
		first []byte
		specs int64
		total int64
	)
	for specs < n {
		rec, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read trace %s: %w", trace, err)
		}
		if rec.Type != format.TypeEvent || rec.Flow != format.FlowSourceToServer || rec.EventType != maestro.TypeSpecCreate {
			continue
		}
		req := append(wire.AppendPublishHead(nil, len(rec.Data)), rec.Data...)
		if first == nil {
			first = req
		}
		specs++
		total += int64(len(req))
	}
	if first == nil {
		return fmt.Errorf("trace %s holds no spec create event", trace)
	}
	if err := os.WriteFile(out, first, 0o644); err != nil {
		return fmt.Errorf("write the PublishRequest: %w", err)
	}
	fmt.Fprintf(w, "first spec %d bytes; first %d specs %.0f bytes each on average\n", len(first), specs, float64(total)/float64(specs))
	return nil
}
