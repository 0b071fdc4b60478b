package report

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

//go:embed report.html.tmpl
var pageTemplate string

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"svg":      svgChart,
	"legend":   legend,
	"short":    func(s string) string { return s[:min(len(s), 12)] },
	"settings": settingsLine,
	"counts":   countsLine,
}).Parse(pageTemplate))

// WriteHTML writes the report as one HTML page that needs nothing else:
// the charts are inline SVG, there is no script and nothing is fetched.
func WriteHTML(w io.Writer, rep *Report) error {
	v := struct {
		*Report
		Dashes, RunNames []string
	}{Report: rep}
	for i, r := range rep.Runs {
		v.Dashes = append(v.Dashes, dashes[i%len(dashes)])
		v.RunNames = append(v.RunNames, r.Name)
	}
	return page.Execute(w, v)
}

// WriteJSON writes a report's data (or a comparison) as indented JSON.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// Colours of the lines of a chart, in order; runs are told apart by the
// dash pattern, so that a line keeps its colour across runs.
var (
	colours = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"}
	dashes  = []string{"", "7 4", "2 3", "10 3 2 3"}
)

// style returns the colour and dash of a series: the colour by its label
// (the same quantity has the same colour in every run), the dash by run.
func style(c Chart, s Series) (string, string) {
	labels := map[string]int{}
	for _, x := range c.Series {
		if _, ok := labels[x.Label]; !ok {
			labels[x.Label] = len(labels)
		}
	}
	return colours[labels[s.Label]%len(colours)], dashes[s.Run%len(dashes)]
}

type legendItem struct {
	Colour, Dash, Label string
	Run                 int
}

func legend(c Chart) []legendItem {
	out := make([]legendItem, 0, len(c.Series))
	for _, s := range c.Series {
		col, dash := style(c, s)
		out = append(out, legendItem{Colour: col, Dash: dash, Label: s.Label, Run: s.Run})
	}
	return out
}

// Plot geometry, in SVG user units.
const (
	plotW, plotH                  = 700, 250
	padL, padR, padTop, padBottom = 56, 12, 10, 34
)

// svgChart draws a chart as an inline SVG: axes with ticks, a grid, and
// one path per series (a move at the start of each segment).
func svgChart(c Chart) template.HTML {
	xmin, xmax := math.Inf(1), math.Inf(-1)
	ymin, ymax := math.Inf(1), math.Inf(-1)
	for _, s := range c.Series {
		for _, seg := range s.Segments {
			for _, p := range seg {
				xmin, xmax = math.Min(xmin, p[0]), math.Max(xmax, p[0])
				if !c.Log || p[1] > 0 {
					ymin, ymax = math.Min(ymin, p[1]), math.Max(ymax, p[1])
				}
			}
		}
	}
	if math.IsInf(xmin, 0) {
		xmin, xmax = 0, 1
	}
	if xmax <= xmin {
		xmax = xmin + 1
	}
	var yticks []float64
	var ylo, yhi float64
	if c.Log {
		if math.IsInf(ymin, 0) {
			ymin, ymax = 0.001, 1
		}
		ylo, yhi = math.Pow(10, math.Floor(math.Log10(ymin))), math.Pow(10, math.Ceil(math.Log10(ymax)))
		if yhi <= ylo {
			yhi = ylo * 10
		}
		for v := ylo; v <= yhi*1.0001; v *= 10 {
			yticks = append(yticks, v)
		}
	} else {
		if math.IsInf(ymax, 0) || ymax <= 0 {
			ymax = 1
		}
		ylo = 0
		yticks = niceTicks(0, ymax*1.05)
		yhi = yticks[len(yticks)-1]
	}
	w, h := float64(plotW-padL-padR), float64(plotH-padTop-padBottom)
	px := func(x float64) float64 { return padL + (x-xmin)/(xmax-xmin)*w }
	py := func(y float64) float64 {
		if c.Log {
			y = math.Max(y, ylo)
			return padTop + h - (math.Log10(y)-math.Log10(ylo))/(math.Log10(yhi)-math.Log10(ylo))*h
		}
		return padTop + h - (y-ylo)/(yhi-ylo)*h
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-label="%s">`, plotW, plotH, template.HTMLEscapeString(c.Title))
	for _, v := range yticks {
		y := py(v)
		fmt.Fprintf(&b, `<line class="grid" x1="%d" x2="%d" y1="%.1f" y2="%.1f"/><text class="tick" x="%d" y="%.1f" text-anchor="end">%s</text>`,
			padL, plotW-padR, y, y, padL-6, y+4, num(v))
	}
	for _, v := range niceTicks(xmin, xmax) {
		if v < xmin || v > xmax {
			continue
		}
		x := px(v)
		fmt.Fprintf(&b, `<line class="grid" x1="%.1f" x2="%.1f" y1="%d" y2="%d"/><text class="tick" x="%.1f" y="%d" text-anchor="middle">%s</text>`,
			x, x, padTop, plotH-padBottom, x, plotH-padBottom+16, num(v))
	}
	fmt.Fprintf(&b, `<text class="axis" x="%d" y="%d" text-anchor="middle">seconds since T0</text>`, padL+int(w)/2, plotH-4)
	fmt.Fprintf(&b, `<text class="axis" x="14" y="%d" transform="rotate(-90 14 %d)" text-anchor="middle">%s</text>`,
		padTop+int(h)/2, padTop+int(h)/2, template.HTMLEscapeString(c.Unit))
	fmt.Fprintf(&b, `<rect class="frame" x="%d" y="%d" width="%.0f" height="%.0f"/>`, padL, padTop, w, h)
	for _, s := range c.Series {
		col, dash := style(c, s)
		var d strings.Builder
		for _, seg := range s.Segments {
			for k, p := range seg {
				op := 'L'
				if k == 0 {
					op = 'M'
				}
				fmt.Fprintf(&d, "%c%.1f %.1f", op, px(p[0]), py(p[1]))
			}
			if len(seg) == 1 { // a lone point still shows
				fmt.Fprintf(&d, "h1")
			}
		}
		if d.Len() == 0 {
			continue
		}
		dashAttr := ""
		if dash != "" {
			dashAttr = fmt.Sprintf(` stroke-dasharray="%s"`, dash)
		}
		fmt.Fprintf(&b, `<path d="%s" stroke="%s"%s><title>%s</title></path>`, d.String(), col, dashAttr, template.HTMLEscapeString(s.Label))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // built from numbers and escaped text only
}

// niceTicks returns about five round values (1, 2 or 5 times a power of
// ten apart) covering [lo, hi].
func niceTicks(lo, hi float64) []float64 {
	span := hi - lo
	if span <= 0 {
		span = 1
	}
	raw := span / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var out []float64
	for v := math.Floor(lo/step) * step; v <= hi+step*0.999; v += step {
		out = append(out, math.Round(v/step)*step)
	}
	return out
}

// num formats a tick value briefly: 1.5k, 20, 0.25, 1e-3.
func num(v float64) string {
	a := math.Abs(v)
	switch {
	case a == 0:
		return "0"
	case a >= 1e6:
		return strconv.FormatFloat(v/1e6, 'g', 3, 64) + "M"
	case a >= 1e4:
		return strconv.FormatFloat(v/1e3, 'g', 3, 64) + "k"
	case a >= 0.01:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
	return strconv.FormatFloat(v, 'g', 1, 64)
}

// joinSorted formats a map's entries in key order, joined by sep.
func joinSorted[V any](m map[string]V, entry func(k string, v V) string, sep string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, entry(k, m[k]))
	}
	return strings.Join(parts, sep)
}

func settingsLine(m map[string]string) string {
	return joinSorted(m, func(k, v string) string { return k + "=" + v }, " ")
}

func countsLine(m map[string]int64) string {
	return joinSorted(m, func(k string, v int64) string { return fmt.Sprintf("%s %d", k, v) }, ", ")
}
