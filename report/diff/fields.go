package diff

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	pbv1 "open-cluster-management.io/sdk-go/pkg/cloudevents/generic/options/grpc/protobuf/v1"

	"github.com/cereplay/cereplay/format"
	"github.com/cereplay/cereplay/maestro/wire"
)

// Limits of a detailed difference, so one record cannot flood the output.
const (
	maxFields    = 10
	maxValueText = 100
	absent       = "<absent>"
)

// value is one field of a record: what is compared and what is shown.
type value struct {
	name, cmp, show string
}

// view is a record taken apart into named fields, and its data.
type view struct {
	vals    []value
	data    any // decoded JSON data
	rawData []byte
	isJSON  bool
	hasData bool
}

// fields lists what differs between two aligned records, by the rules
// their sums were made with: the same fields ignored, A's ids remapped.
func (d *differ) fields(ra *format.Record, sa *side, rb *format.Record, sb *side) []Field {
	va, vb := d.view(ra, sa), d.view(rb, sb)
	var out []Field
	add := func(name, a, b string) {
		out = append(out, Field{Name: name, A: cut(a), B: cut(b)})
	}
	find := func(vals []value, name string) (value, bool) {
		i := slices.IndexFunc(vals, func(v value) bool { return v.name == name })
		if i < 0 {
			return value{}, false
		}
		return vals[i], true
	}
	var names []string
	for _, v := range append(slices.Clone(va.vals), vb.vals...) {
		if !slices.Contains(names, v.name) {
			names = append(names, v.name)
		}
	}
	for _, n := range names {
		x, okA := find(va.vals, n)
		y, okB := find(vb.vals, n)
		switch {
		case okA && okB && x.cmp != y.cmp:
			if x.show == y.show {
				// Same text, other meaning: a trigger index that points
				// at a record other than the one A's points at.
				y.show += " (another record than A's)"
			}
			add(n, x.show, y.show)
		case okA && !okB:
			add(n, x.show, absent)
		case !okA && okB:
			add(n, absent, y.show)
		}
	}
	switch {
	case va.hasData != vb.hasData:
		add("data", present(va.hasData, len(va.rawData)), present(vb.hasData, len(vb.rawData)))
	case va.isJSON && vb.isJSON:
		jsonDiff("data", va.data, vb.data, add)
	case !bytes.Equal(va.rawData, vb.rawData):
		add("data", fmt.Sprintf("%d bytes", len(va.rawData)), fmt.Sprintf("%d bytes", len(vb.rawData)))
	}
	if len(out) == 0 {
		// The sums differ but no field does: only a hash collision or a
		// repeated field could do this; say so rather than show nothing.
		add("(record)", "differs", "differs")
	}
	if len(out) > maxFields {
		n := len(out) - maxFields
		out = append(out[:maxFields], Field{Name: fmt.Sprintf("(%d more fields)", n)})
	}
	return out
}

func present(has bool, n int) string {
	if !has {
		return absent
	}
	return fmt.Sprintf("%d bytes", n)
}

// view takes a record apart for fields.
func (d *differ) view(rec *format.Record, s *side) view {
	var v view
	put := func(name, cmp, show string) {
		if !d.ignore[name] {
			v.vals = append(v.vals, value{name, cmp, show})
		}
	}
	same := func(name, s string) { put(name, s, s) }
	same("offset", rec.Offset.String())
	if rec.HasTrigger {
		put("trigger", strconv.FormatUint(triggerKey(s, rec.Trigger), 16), "record "+strconv.FormatUint(rec.Trigger, 10))
		same("delay", rec.Delay.String())
	}
	if rec.Type == format.TypeOutcome {
		o := &rec.Outcome
		same("outcome.index", strconv.FormatUint(o.Index, 10))
		same("outcome.status", o.Status.String())
		same("outcome.code", strconv.FormatUint(uint64(o.Code), 10))
		same("outcome.lateness", o.Lateness.String())
		same("outcome.latency", o.Latency.String())
		same("outcome.delivery", o.Delivery.String())
		same("outcome.note", o.Note)
	}
	if len(rec.Data) == 0 {
		return v
	}
	if rec.Flow.Subscribe() {
		req := &pbv1.SubscriptionRequest{}
		show := fmt.Sprintf("%d bytes", len(rec.Data))
		if proto.Unmarshal(rec.Data, req) == nil {
			show = fmt.Sprintf("source=%q cluster_name=%q data_type=%q", req.GetSource(), req.GetClusterName(), req.GetDataType())
		}
		put("subscription", string(rec.Data), show)
		return v
	}
	_ = wire.Parts(rec.Data, func(name []byte, attr bool, b []byte) error {
		n := string(name)
		switch {
		case !attr && n == string(wire.PartData):
			if d.ignore["data"] {
				return nil
			}
			v.hasData, v.rawData = true, b
			var x any
			if json.Unmarshal(b, &x) == nil {
				for _, p := range d.dataPaths {
					x = strip(x, p)
				}
				v.data, v.isJSON = x, true
			}
		case attr && d.ids != nil && isRemapped(name):
			str := remapAttr(d.ids, s.isA, rec.ResourceID, n, b)
			same(n, str)
		case attr:
			put(n, string(b), attrText(b))
		default:
			same(n, string(b))
		}
		return nil
	})
	return v
}

// attrText shows an attribute value as its type's text.
func attrText(b []byte) string {
	a := &pbv1.CloudEventAttributeValue{}
	if err := proto.Unmarshal(b, a); err != nil {
		return fmt.Sprintf("undecodable (%v)", err)
	}
	switch x := a.GetAttr().(type) {
	case *pbv1.CloudEventAttributeValue_CeString:
		return x.CeString
	case *pbv1.CloudEventAttributeValue_CeInteger:
		return strconv.Itoa(int(x.CeInteger))
	case *pbv1.CloudEventAttributeValue_CeBoolean:
		return strconv.FormatBool(x.CeBoolean)
	case *pbv1.CloudEventAttributeValue_CeTimestamp:
		return x.CeTimestamp.AsTime().Format(time.RFC3339Nano)
	case *pbv1.CloudEventAttributeValue_CeUri:
		return x.CeUri
	case *pbv1.CloudEventAttributeValue_CeUriRef:
		return x.CeUriRef
	case *pbv1.CloudEventAttributeValue_CeBytes:
		return base64.StdEncoding.EncodeToString(x.CeBytes)
	}
	return "<unset>"
}

// jsonDiff reports the paths where two decoded JSON values differ:
// members of objects by name, elements of arrays by index.
func jsonDiff(path string, a, b any, add func(name, a, b string)) {
	switch x := a.(type) {
	case map[string]any:
		if y, ok := b.(map[string]any); ok {
			keys := make([]string, 0, len(x)+len(y))
			for k := range x {
				keys = append(keys, k)
			}
			for k := range y {
				if _, ok := x[k]; !ok {
					keys = append(keys, k)
				}
			}
			slices.Sort(keys)
			for _, k := range keys {
				xv, okA := x[k]
				yv, okB := y[k]
				p := path + "." + k
				switch {
				case okA && okB:
					jsonDiff(p, xv, yv, add)
				case okA:
					add(p, jsonText(xv), absent)
				default:
					add(p, absent, jsonText(yv))
				}
			}
			return
		}
	case []any:
		if y, ok := b.([]any); ok {
			for i := 0; i < max(len(x), len(y)); i++ {
				p := path + "[" + strconv.Itoa(i) + "]"
				switch {
				case i < len(x) && i < len(y):
					jsonDiff(p, x[i], y[i], add)
				case i < len(x):
					add(p, jsonText(x[i]), absent)
				default:
					add(p, absent, jsonText(y[i]))
				}
			}
			return
		}
	}
	if ta, tb := jsonText(a), jsonText(b); ta != tb {
		add(path, ta, tb)
	}
}

// jsonText shows a JSON value: a string as itself, anything else as JSON.
func jsonText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// cut shortens a value to a readable length, on a rune boundary.
func cut(s string) string {
	if len(s) <= maxValueText {
		return s
	}
	n := maxValueText
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return strings.TrimSpace(s[:n]) + fmt.Sprintf("… (%d bytes)", len(s))
}
