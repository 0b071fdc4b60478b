package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	pbv1 "open-cluster-management.io/sdk-go/pkg/cloudevents/generic/options/grpc/protobuf/v1"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/maestro"
)

func catCommand() *cli.Command {
	return &cli.Command{
		Name:      "cat",
		Usage:     "print a trace's records as JSON lines",
		ArgsUsage: "TRACE",
		UsageText: "cereplay cat TRACE [--flow F] [--cluster C] [--type T] [--limit N] [--data]\n\n" +
			"One JSON object per record: index, offset, flow, actor, resource id, event type, trigger,\n" +
			"size. With --data, the CloudEvent in CloudEvents JSON form with its data decoded.\n" +
			"Flows: source>server, agent>server, server>agent, server>source, agent-subscribe, source-subscribe.\n" +
			"--type takes the full event type or its tail (spec.create_request, status.update_request, ...).\n" +
			traceArgUsage + "\n\n" +
			"Examples:\n" +
			"   cereplay cat --limit 5 traces/tiny\n" +
			"   cereplay cat --cluster maestro-cluster-7 --type status.update_request --data traces/tiny | jq .event.data.conditions\n" +
			"   cereplay cat --flow agent-subscribe traces/tiny | wc -l",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "flow", Usage: "only records of this flow"},
			&cli.StringFlag{Name: "cluster", Usage: "only records of this cluster (consumer)"},
			&cli.StringFlag{Name: "type", Usage: "only events of this type"},
			&cli.Int64Flag{Name: "limit", Usage: "stop after this many records (0: all)"},
			&cli.BoolFlag{Name: "data", Usage: "include the decoded event"},
			digestFlag(),
		},
		Action: func(c *cli.Context) error {
			src, opts, err := traceSource(c)
			if err != nil {
				return err
			}
			f, err := newCatFilter(c.String("flow"), c.String("cluster"), c.String("type"))
			if err != nil {
				return err
			}
			if c.Int64("limit") < 0 {
				return usagef("cat: --limit must be 0 or more, got %d", c.Int64("limit"))
			}
			r, err := format.OpenSource(c.Context, src, opts)
			if err != nil {
				return fmt.Errorf("cat %s: %w", src, err)
			}
			defer r.Close()
			if err := catRecords(c.App.Writer, r, f, c.Int64("limit"), c.Bool("data")); err != nil {
				return fmt.Errorf("cat %s: %w", src, err)
			}
			return nil
		},
	}
}

// catFilter selects records; zero fields match everything.
type catFilter struct {
	flow      format.Flow
	cluster   string
	eventType string
}

func newCatFilter(flow, cluster, eventType string) (catFilter, error) {
	f := catFilter{cluster: cluster, eventType: eventType}
	if flow != "" {
		fl, err := format.ParseFlow(flow)
		if err != nil {
			return f, usagef("cat: --flow: %v", err)
		}
		f.flow = fl
	}
	if eventType != "" && !strings.Contains(eventType, maestro.DataType) && eventType != maestro.TypeHeartbeat {
		f.eventType = maestro.DataType + "." + eventType
	}
	return f, nil
}

func (f catFilter) match(rec *format.Record, keys maestro.Keys) bool {
	if f.flow != 0 && rec.Flow != f.flow {
		return false
	}
	if f.eventType != "" && rec.EventType != f.eventType {
		return false
	}
	if f.cluster != "" && rec.Actor != f.cluster && keys.ClusterName != f.cluster {
		return false
	}
	return true
}

// catLine is the JSON form of one record.
type catLine struct {
	Index        int64           `json:"index"`
	Record       string          `json:"record"`
	OffsetNS     int64           `json:"offset_ns"`
	Flow         string          `json:"flow"`
	Actor        string          `json:"actor"`
	ResourceID   string          `json:"resource_id,omitempty"`
	Type         string          `json:"type,omitempty"`
	Trigger      *uint64         `json:"trigger,omitempty"`
	DelayNS      int64           `json:"delay_ns,omitempty"`
	Bytes        int             `json:"bytes"`
	Outcome      *catOutcome     `json:"outcome,omitempty"`
	Event        json.RawMessage `json:"event,omitempty"`
	Subscription json.RawMessage `json:"subscription,omitempty"`
}

type catOutcome struct {
	Index      uint64 `json:"index"`
	Status     string `json:"status"`
	Code       uint32 `json:"code,omitempty"`
	LatenessNS int64  `json:"lateness_ns,omitempty"`
	LatencyNS  int64  `json:"latency_ns,omitempty"`
	DeliveryNS int64  `json:"delivery_ns,omitempty"`
	Note       string `json:"note,omitempty"`
}

func catRecords(w io.Writer, r *format.Reader, f catFilter, limit int64, withData bool) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	var printed int64
	for index := int64(0); limit == 0 || printed < limit; index++ {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			bw.Flush()
			return err
		}
		var keys maestro.Keys
		if f.cluster != "" && isEventFlow(rec.Flow) && rec.Type == format.TypeEvent {
			keys, _ = maestro.ExtractKeys(rec.Data) // a filter only; cat --data reports bad bytes
		}
		if !f.match(rec, keys) {
			continue
		}
		line, err := newCatLine(index, rec, withData)
		if err != nil {
			bw.Flush()
			return fmt.Errorf("record %d: %w", index, err)
		}
		if err := enc.Encode(line); err != nil {
			return err
		}
		printed++
	}
	return bw.Flush()
}

func isEventFlow(f format.Flow) bool {
	return f != format.FlowAgentSubscribe && f != format.FlowSourceSubscribe
}

func newCatLine(index int64, rec *format.Record, withData bool) (catLine, error) {
	l := catLine{
		Index:      index,
		Record:     "event",
		OffsetNS:   int64(rec.Offset),
		Flow:       rec.Flow.String(),
		Actor:      rec.Actor,
		ResourceID: rec.ResourceID,
		Type:       rec.EventType,
		Bytes:      len(rec.Data),
	}
	if rec.HasTrigger {
		t := rec.Trigger
		l.Trigger = &t
		l.DelayNS = int64(rec.Delay)
	}
	if rec.Type == format.TypeOutcome {
		o := rec.Outcome
		l.Record = "outcome"
		l.Outcome = &catOutcome{Index: o.Index, Status: o.Status.String(), Code: o.Code,
			LatenessNS: int64(o.Lateness), LatencyNS: int64(o.Latency), DeliveryNS: int64(o.Delivery), Note: o.Note}
	}
	if !withData || len(rec.Data) == 0 {
		return l, nil
	}
	if !isEventFlow(rec.Flow) {
		var sub pbv1.SubscriptionRequest
		if err := proto.Unmarshal(rec.Data, &sub); err != nil {
			return l, fmt.Errorf("decode subscription request: %w", err)
		}
		b, err := protojson.Marshal(&sub)
		if err != nil {
			return l, err
		}
		l.Subscription = b
		return l, nil
	}
	ce, err := maestro.Unmarshal(rec.Data)
	if err != nil {
		return l, err
	}
	evt, err := maestro.ToCloudEvent(ce)
	if err != nil {
		return l, err
	}
	b, err := json.Marshal(evt)
	if err != nil {
		return l, fmt.Errorf("encode CloudEvent JSON: %w", err)
	}
	l.Event = b
	return l, nil
}
