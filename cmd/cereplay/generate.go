package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/cereplay/cereplay/generate"
)

func generateCommand() *cli.Command {
	d := generate.DefaultParams()
	return &cli.Command{
		Name:  "generate",
		Usage: "precompute a trace: by default the traffic of Maestro's 3,000 × 50 guestbook scale test",
		UsageText: "cereplay generate --out DIR [flags]\n\n" +
			"Writes every message of a Maestro scale test, exactly as the SDK's source client and work\n" +
			"agents put them on the wire, into a trace folder: agents subscribe first (in batches), then\n" +
			"the source creates the works at --rate per second, and each agent answers each work with its\n" +
			"status after an apply delay. The same flags always give the same bytes and digest.\n" +
			"Ctrl-C or SIGTERM stops it and removes the unfinished trace.\n\n" +
			"Examples:\n" +
			"   cereplay generate --out /data/scale                  # the full scale test: 3,000 clusters x 50 works\n" +
			"   cereplay generate --out traces/tiny --clusters 10 --works-per-cluster 5\n" +
			"   cereplay generate --out t --status-updates 2 --apply-delay lognormal:median=2s,sigma=0.8\n" +
			"   cereplay generate --out t --order round-robin --rate 100 --seed 7\n" +
			"   cereplay generate --out t --workload app.yaml:3 --workload jobs/:1   # your own workloads, mixed 3:1\n" +
			"   cereplay generate --out t --updates-per-work 2 --delete              # create, update twice, delete every work\n" +
			"   cereplay generate --out t --churn 50 --churn-for 10m                 # then 10 minutes of creates, updates, deletes\n" +
			"   cereplay generate --out t --status scale-test --subscribe-pause 0s",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Usage: "trace folder to create (required; must not hold a trace)"},
			&cli.IntFlag{Name: "clusters", Value: d.Clusters, Usage: "number of consumers (clusters), each with its agent"},
			&cli.StringFlag{Name: "cluster-prefix", Value: d.ClusterPrefix, Usage: "cluster i is named `PREFIX`i, from 1"},
			&cli.IntFlag{Name: "works-per-cluster", Value: d.WorksPerCluster, Usage: "ManifestWorks per cluster, named <cluster>-gb-<i> (guestbook) or <cluster>-w-<i> (--workload)"},
			&cli.StringSliceFlag{Name: "workload", Usage: "the bundle of each work, `FILE|DIR[:WEIGHT]`: Kubernetes manifests (YAML, one or many documents; a folder: its *.yaml, *.yml, *.json) or a ManifestWork, " +
				"with {{.Cluster}}, {{.Work}}, {{.Index}} placeholders (Go text/template); repeat to mix workloads by weight; 'guestbook' is the built-in (default: guestbook)"},
			&cli.StringFlag{Name: "source-id", Value: d.SourceID, Usage: "the source client's id"},
			&cli.IntFlag{Name: "updates-per-work", Usage: "after the creates, this many rounds of spec updates over every work (each sets annotation cereplay.io/update and {{.Update}} on the bundle; the agent answers with a status of the new generation)"},
			&cli.BoolFlag{Name: "delete", Usage: "after the updates, a round of spec deletes over every work, each answered by the agent's Deleted status (Maestro then removes the bundle)"},
			&cli.Float64Flag{Name: "churn", Usage: "then a steady state of `RATE` spec events per second, each a create of a new work, an update or a delete of a live one (equal chances, drawn from --seed)"},
			&cli.DurationFlag{Name: "churn-for", Usage: "how long the --churn phase lasts"},
			&cli.BoolFlag{Name: "resync-reconnects", Usage: "before the churn, a fleet restart: every agent subscribes again 5-10 s later (the SDK's first backoff) and sends the SDK agent's spec resync request listing the versions it holds"},
			&cli.Float64Flag{Name: "rate", Value: d.Rate, Usage: "works created per second"},
			&cli.StringFlag{Name: "order", Value: d.Order.String(), Usage: "creation order: scale-test (--creators in parallel, each walking its clusters), round-robin, cluster"},
			&cli.IntFlag{Name: "creators", Value: d.Creators, Usage: "parallel creators of the scale-test order"},
			&cli.StringFlag{Name: "status", Value: d.Status.String(), Usage: "status shape: realistic (an OCM work agent) or scale-test (the scale test's simulator)"},
			&cli.IntFlag{Name: "status-updates", Value: d.StatusUpdates, Usage: "status reports per work: 1 (Available), or 2 (Applied, then Available)"},
			&cli.StringFlag{Name: "apply-delay", Value: d.ApplyDelay.String(), Usage: "spec arrival to status: lognormal:median=D,sigma=S[,max=D], uniform:min=D,max=D or fixed:D"},
			&cli.StringFlag{Name: "available-delay", Value: d.AvailableDelay.String(), Usage: "Applied to Available, with --status-updates 2 (same syntax)"},
			&cli.IntFlag{Name: "subscribe-batch", Value: d.SubscribeBatch, Usage: "agents subscribe in batches of this many"},
			&cli.DurationFlag{Name: "subscribe-gap", Value: d.SubscribeGap, Usage: "time between two agents subscribing"},
			&cli.DurationFlag{Name: "subscribe-pause", Value: d.SubscribePause, Usage: "pause after each batch of agents"},
			&cli.DurationFlag{Name: "create-after", Value: d.CreateAfter, Usage: "from the last agent subscribing to the first create"},
			&cli.Int64Flag{Name: "seed", Value: d.Seed, Usage: "seed of every random choice (event ids, delays)"},
			&cli.StringFlag{Name: "start-time", Value: d.StartTime.Format(time.RFC3339Nano),
				Usage: "wall-clock time of the trace's start, for event times (RFC 3339)"},
			&cli.Int64Flag{Name: "segment-size", Value: d.SegmentSize, Usage: "raw (uncompressed) bytes per segment"},
			&cli.IntFlag{Name: "level", Value: d.Level, Usage: "zstd level 1..22: 1 writes fastest; 3, the format's default, is 3% smaller and reads a little cheaper"},
			&cli.IntFlag{Name: "workers", DefaultText: "one per CPU",
				Usage: "compression workers, 1 to 4 × the CPUs Go uses; the output does not depend on it"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress bar"},
		},
		Action: runGenerate,
	}
}

func runGenerate(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("generate: takes no arguments, got %q (did you mean --out %s?)", c.Args().First(), c.Args().First())
	}
	if c.String("out") == "" {
		return usagef("generate: --out DIR is required (see 'cereplay generate --help')")
	}
	p, err := generateParams(c)
	if err != nil {
		return err
	}
	if err := p.Validate(); err != nil {
		return usageError{err}
	}
	dir := c.String("out")
	// Ctrl-C or SIGTERM stops generating and removes the unfinished trace;
	// a second signal kills at once (leaving segments without a manifest,
	// which every reader refuses).
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop)
	bar := newProgress(c.App.ErrWriter, c.Bool("quiet"), "generating")
	start := time.Now()
	m, err := generate.Generate(ctx, dir, p, bar.callback())
	bar.Finish()
	if err != nil {
		return err
	}
	took := time.Since(start)
	_, err = fmt.Fprintf(c.App.Writer, "generated %s: %d records (%d spec events, %d statuses, %d subscribes) spanning %s in %s; %s raw, %s in %s; digest %s\n",
		dir, m.Records, m.CountsByFlow["source>server"], m.CountsByFlow["agent>server"],
		m.CountsByFlow["agent-subscribe"]+m.CountsByFlow["source-subscribe"],
		(m.LastOffset - m.FirstOffset).Round(time.Second), took.Round(time.Millisecond),
		humanBytes(m.RawBytes), humanBytes(m.CompressedBytes), plural(len(m.Segments), "segment"), m.Digest)
	return err
}

// generateParams reads the flags into generate.Params.
func generateParams(c *cli.Context) (generate.Params, error) {
	p := generate.DefaultParams()
	p.Clusters = c.Int("clusters")
	p.ClusterPrefix = c.String("cluster-prefix")
	p.WorksPerCluster = c.Int("works-per-cluster")
	p.SourceID = c.String("source-id")
	p.Rate = c.Float64("rate")
	p.Creators = c.Int("creators")
	p.StatusUpdates = c.Int("status-updates")
	p.SubscribeBatch = c.Int("subscribe-batch")
	p.SubscribeGap = c.Duration("subscribe-gap")
	p.SubscribePause = c.Duration("subscribe-pause")
	p.CreateAfter = c.Duration("create-after")
	p.Seed = c.Int64("seed")
	p.SegmentSize = c.Int64("segment-size")
	p.Level = c.Int("level")
	p.Workers = c.Int("workers")
	if c.IsSet("workers") && p.Workers < 1 {
		return p, usagef("generate: --workers must be at least 1, got %d (leave it out for one per CPU)", p.Workers)
	}
	p.UpdatesPerWork = c.Int("updates-per-work")
	p.Delete = c.Bool("delete")
	p.Churn = c.Float64("churn")
	p.ChurnFor = c.Duration("churn-for")
	p.ResyncReconnects = c.Bool("resync-reconnects")
	for _, v := range c.StringSlice("workload") {
		w, err := generate.ParseWorkloadSpec(v)
		if err != nil {
			return p, usagef("--workload: %v", err)
		}
		p.Workloads = append(p.Workloads, w)
	}
	start, err := time.Parse(time.RFC3339Nano, c.String("start-time"))
	if err != nil {
		return p, usagef("--start-time: %q is not an RFC 3339 time such as 2024-12-20T08:30:00Z", c.String("start-time"))
	}
	p.StartTime = start.UTC()
	if p.Order, err = generate.ParseOrder(c.String("order")); err != nil {
		return p, usagef("--order: %v", err)
	}
	if p.Status, err = generate.ParseStatusShape(c.String("status")); err != nil {
		return p, usagef("--status: %v", err)
	}
	if p.ApplyDelay, err = generate.ParseDelay(c.String("apply-delay")); err != nil {
		return p, usagef("--apply-delay: %v", err)
	}
	if p.AvailableDelay, err = generate.ParseDelay(c.String("available-delay")); err != nil {
		return p, usagef("--available-delay: %v", err)
	}
	return p, nil
}
