package record

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cereplay/cereplay/format"
)

// stats are the recorder's counters. They are the one place each count is
// kept: the Prometheus collector, the live progress and the summary all
// read them.
type stats struct {
	msgs, bytes, undecodable [format.FlowSourceSubscribe + 1]atomic.Int64 // by flow
	heartbeats               atomic.Int64
	codes                    [17]atomic.Int64 // failed calls and streams by gRPC code
	agents, sources          atomic.Int64     // open Subscribe streams
	added                    *prometheus.HistogramVec
	recording                func() bool
	records                  func() int64
}

func newStats() *stats {
	return &stats{added: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "cereplay_record_added_latency_seconds",
		Help:    "Time the proxy adds to a Publish (the call minus its upstream part), by port.",
		Buckets: prometheus.ExponentialBuckets(10e-6, 2, 14),
	}, []string{"port"})}
}

func (s *stats) message(f format.Flow, n int) {
	s.msgs[f].Add(1)
	s.bytes[f].Add(int64(n))
}

// result counts a call or stream that ended with an error, by code.
func (s *stats) result(err error) {
	if err == nil {
		return
	}
	if c := status.Code(err); int(c) < len(s.codes) {
		s.codes[c].Add(1)
	}
}

func (s *stats) streams(port string, d int64) {
	if port == "broker" {
		s.agents.Add(d)
	} else {
		s.sources.Add(d)
	}
}

func (s *stats) addedLatency(port string, d time.Duration) {
	s.added.WithLabelValues(port).Observe(d.Seconds())
}

var (
	descMsgs        = prometheus.NewDesc("cereplay_record_messages_total", "Messages proxied, by flow (heartbeats included).", []string{"flow"}, nil)
	descBytes       = prometheus.NewDesc("cereplay_record_bytes_total", "Bytes of messages proxied, by flow.", []string{"flow"}, nil)
	descUndecodable = prometheus.NewDesc("cereplay_record_undecodable_total", "Messages passed through that are not valid CloudEvents (recorded raw), by flow.", []string{"flow"}, nil)
	descHeartbeats  = prometheus.NewDesc("cereplay_record_heartbeats_total", "Heartbeats proxied.", nil, nil)
	descErrors      = prometheus.NewDesc("cereplay_record_errors_total", "Calls and streams that ended with an error, by gRPC code.", []string{"code"}, nil)
	descStreams     = prometheus.NewDesc("cereplay_record_streams", "Open Subscribe streams, by port.", []string{"port"}, nil)
	descRecording   = prometheus.NewDesc("cereplay_record_recording", "1 while the recording runs, 0 once it stopped.", nil, nil)
	descRecords     = prometheus.NewDesc("cereplay_record_records_total", "Records written to the trace.", nil, nil)
)

func (s *stats) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descMsgs, descBytes, descUndecodable, descHeartbeats, descErrors, descStreams, descRecording, descRecords} {
		ch <- d
	}
	s.added.Describe(ch)
}

func (s *stats) Collect(ch chan<- prometheus.Metric) {
	for f := format.FlowSourceToServer; f <= format.FlowSourceSubscribe; f++ {
		ch <- prometheus.MustNewConstMetric(descMsgs, prometheus.CounterValue, float64(s.msgs[f].Load()), f.String())
		ch <- prometheus.MustNewConstMetric(descBytes, prometheus.CounterValue, float64(s.bytes[f].Load()), f.String())
		ch <- prometheus.MustNewConstMetric(descUndecodable, prometheus.CounterValue, float64(s.undecodable[f].Load()), f.String())
	}
	ch <- prometheus.MustNewConstMetric(descHeartbeats, prometheus.CounterValue, float64(s.heartbeats.Load()))
	for c := range s.codes {
		if n := s.codes[c].Load(); n > 0 {
			ch <- prometheus.MustNewConstMetric(descErrors, prometheus.CounterValue, float64(n), codes.Code(c).String())
		}
	}
	ch <- prometheus.MustNewConstMetric(descStreams, prometheus.GaugeValue, float64(s.agents.Load()), "broker")
	ch <- prometheus.MustNewConstMetric(descStreams, prometheus.GaugeValue, float64(s.sources.Load()), "source")
	on := 0.0
	if s.recording() {
		on = 1
	}
	ch <- prometheus.MustNewConstMetric(descRecording, prometheus.GaugeValue, on)
	ch <- prometheus.MustNewConstMetric(descRecords, prometheus.CounterValue, float64(s.records()))
	s.added.Collect(ch)
}

// Progress is a snapshot of a running recording.
type Progress struct {
	Elapsed     time.Duration
	Messages    map[string]int64 // by flow name
	Bytes       map[string]int64
	Undecodable int64
	Heartbeats  int64
	Agents      int64            // open agent streams
	Sources     int64            // open source streams
	Errors      map[string]int64 // by gRPC code name
	Records     int64            // written to the trace
	Recording   bool
}

func (s *stats) snapshot() Progress {
	p := Progress{Messages: map[string]int64{}, Bytes: map[string]int64{}, Errors: map[string]int64{},
		Heartbeats: s.heartbeats.Load(), Agents: s.agents.Load(), Sources: s.sources.Load(),
		Records: s.records(), Recording: s.recording()}
	for f := format.FlowSourceToServer; f <= format.FlowSourceSubscribe; f++ {
		if n := s.msgs[f].Load(); n > 0 {
			p.Messages[f.String()] = n
			p.Bytes[f.String()] = s.bytes[f].Load()
		}
		p.Undecodable += s.undecodable[f].Load()
	}
	for c := range s.codes {
		if n := s.codes[c].Load(); n > 0 {
			p.Errors[codes.Code(c).String()] = n
		}
	}
	return p
}
