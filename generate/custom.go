package generate

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	texttemplate "text/template"
	"text/template/parse"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	workv1 "open-cluster-management.io/api/work/v1"
	sdkutils "open-cluster-management.io/sdk-go/pkg/cloudevents/clients/utils"
	"sigs.k8s.io/yaml"
)

// GuestbookWorkload is the --workload value of the built-in guestbook.
const GuestbookWorkload = "guestbook"

// WorkloadSpec is one --workload flag: a file or folder of Kubernetes
// manifests (or a ManifestWork), or GuestbookWorkload, and its weight
// among the workloads of the trace.
type WorkloadSpec struct {
	Path   string
	Weight int
}

// String returns the flag value: PATH, or PATH:WEIGHT when the weight is
// not 1.
func (s WorkloadSpec) String() string {
	if s.Weight == 1 {
		return s.Path
	}
	return s.Path + ":" + strconv.Itoa(s.Weight)
}

// ParseWorkloadSpec parses FILE|DIR[:WEIGHT]. A path that itself ends in
// ":<digits>" needs an explicit weight after it.
func ParseWorkloadSpec(s string) (WorkloadSpec, error) {
	spec := WorkloadSpec{Path: s, Weight: 1}
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		w, err := strconv.Atoi(s[i+1:])
		if err == nil {
			if w < 1 || w > 1_000_000 {
				return WorkloadSpec{}, fmt.Errorf("generate: workload %q: weight %d is outside 1..1000000", s, w)
			}
			spec = WorkloadSpec{Path: s[:i], Weight: w}
		}
	}
	if spec.Path == "" {
		return WorkloadSpec{}, fmt.Errorf("generate: workload %q: empty path", s)
	}
	return spec, nil
}

// WorkData is what a workload's {{ }} placeholders see, per work:
// {{.Cluster}} the consumer, {{.Work}} the work's name, {{.Index}} the
// work's index within its cluster (from 0), {{.Update}} 0 for the create
// and u for the work's u-th update.
type WorkData struct {
	Cluster string
	Work    string
	Index   int
	Update  int
}

// document is one YAML document of a workload file.
type document struct {
	file string // as named to the user
	num  int    // 1-based document number within its file
	line int    // 1-based line of the file the document starts on
	text string
	tmpl *texttemplate.Template // nil: no placeholders, text is used as it is
}

func (d *document) where() string {
	return fmt.Sprintf("%s: document %d (line %d)", d.file, d.num, d.line)
}

// customWorkload is a workload read from files: its documents, rendered
// for each work when they hold placeholders, parsed once when not.
type customWorkload struct {
	name   string // the --workload path
	docs   []document
	static *Workload // set when no document has placeholders
	digest string    // sha256 over the files' names and contents
}

// ErrWorkload wraps every workload that cannot be used.
var ErrWorkload = errors.New("generate: invalid workload")

// loadWorkload reads a workload file or folder (its *.yaml, *.yml and
// *.json files in name order, not recursing) and checks that it renders
// and parses for a first work, so a broken workload is refused before
// anything is written.
func loadWorkload(path string, first WorkData) (*customWorkload, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrWorkload, err)
	}
	files := []string{path}
	if info.IsDir() {
		files = nil
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrWorkload, err)
		}
		for _, e := range entries {
			switch strings.ToLower(filepath.Ext(e.Name())) {
			case ".yaml", ".yml", ".json":
				if e.Type()&fs.ModeType == 0 || e.Type()&fs.ModeSymlink != 0 {
					files = append(files, filepath.Join(path, e.Name()))
				}
			}
		}
		sort.Strings(files)
		if len(files) == 0 {
			return nil, fmt.Errorf("%w: %s: no *.yaml, *.yml or *.json file in the folder", ErrWorkload, path)
		}
	}
	cw := &customWorkload{name: path}
	h := sha256.New()
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrWorkload, err)
		}
		fmt.Fprintf(h, "%s\x00%d\x00", filepath.Base(f), len(raw))
		h.Write(raw)
		docs, err := splitDocuments(f, raw)
		if err != nil {
			return nil, err
		}
		cw.docs = append(cw.docs, docs...)
	}
	cw.digest = hex.EncodeToString(h.Sum(nil))
	if len(cw.docs) == 0 {
		return nil, fmt.Errorf("%w: %s: no manifest in it", ErrWorkload, path)
	}
	templated := false
	for _, d := range cw.docs {
		templated = templated || d.tmpl != nil
	}
	w, err := cw.render(first)
	if err != nil {
		return nil, err
	}
	if !templated {
		cw.static = w
	}
	return cw, nil
}

// docSeparator is a YAML document separator line.
var docSeparator = regexp.MustCompile(`^---(\s.*)?$`)

// splitDocuments cuts a file at its "---" lines, keeping where each
// document starts, and parses the placeholders of those that have any.
func splitDocuments(file string, raw []byte) ([]document, error) {
	if bytes.IndexByte(raw, 0) >= 0 {
		return nil, fmt.Errorf("%w: %s: not a text file", ErrWorkload, file)
	}
	var docs []document
	lines := strings.SplitAfter(string(raw), "\n")
	start, num := 0, 1
	flush := func(end int) error {
		text := strings.Join(lines[start:end], "")
		if strings.TrimSpace(stripComments(text)) != "" {
			d := document{file: file, num: num, line: start + 1, text: text}
			if strings.Contains(text, "{{") {
				t, err := texttemplate.New(d.where()).Option("missingkey=error").Parse(text)
				if err != nil {
					return fmt.Errorf("%w: %s: placeholders: %v", ErrWorkload, d.where(), err)
				}
				if err := checkTemplate(t); err != nil {
					return fmt.Errorf("%w: %s: placeholders: %v", ErrWorkload, d.where(), err)
				}
				d.tmpl = t
			}
			docs = append(docs, d)
		}
		num++
		return nil
	}
	for i, l := range lines {
		if docSeparator.MatchString(strings.TrimRight(l, "\r\n")) {
			if i > 0 || start != i {
				if err := flush(i); err != nil {
					return nil, err
				}
			}
			start = i + 1
		}
	}
	if err := flush(len(lines)); err != nil {
		return nil, err
	}
	return docs, nil
}

// stripComments drops the comment lines of a YAML text, to tell an empty
// document from one with content.
func stripComments(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// forWork returns the workload of one work: the parsed one when nothing
// varies, else the documents rendered for it.
func (cw *customWorkload) forWork(d WorkData) (*Workload, error) {
	if cw.static != nil {
		return cw.static, nil
	}
	return cw.render(d)
}

// render renders every document for a work and builds its Workload.
func (cw *customWorkload) render(data WorkData) (*Workload, error) {
	w := &Workload{Labels: map[string]string{}}
	var buf bytes.Buffer
	for i := range cw.docs {
		d := &cw.docs[i]
		text := []byte(d.text)
		if d.tmpl != nil {
			buf.Reset()
			if err := d.tmpl.Execute(&limitedWriter{b: &buf, left: maxRendered}, data); err != nil {
				return nil, fmt.Errorf("%w: %s: placeholders for work %s: %v", ErrWorkload, d.where(), data.Work, err)
			}
			text = buf.Bytes()
		}
		if err := w.addDocument(d, text); err != nil {
			return nil, err
		}
	}
	if len(w.Manifests) == 0 {
		return nil, fmt.Errorf("%w: %s: no manifest in it", ErrWorkload, cw.name)
	}
	for i := range w.Objects {
		w.Objects[i].Feedback = w.asksStatus(w.Objects[i])
	}
	// What Maestro and the agent check before accepting a bundle: a
	// workload they would refuse is refused here.
	check := &workv1.ManifestWork{Spec: workv1.ManifestWorkSpec{Workload: workv1.ManifestsTemplate{Manifests: w.Manifests}}}
	check.Name, check.Namespace, check.UID, check.ResourceVersion, check.Labels = "check", "check", "check", "0", w.Labels
	if errs := sdkutils.ValidateWork(check); len(errs) != 0 {
		return nil, fmt.Errorf("%w: %s: %v", ErrWorkload, cw.name, errs.ToAggregate())
	}
	return w, nil
}

// yamlLine finds the line number in a YAML parser's message.
var yamlLine = regexp.MustCompile(`line (\d+)`)

// addDocument parses one rendered document: a Kubernetes object becomes a
// manifest of the work; a ManifestWork gives its manifests, manifest
// configs, delete option, executor and labels.
func (w *Workload) addDocument(d *document, text []byte) error {
	js, err := yaml.YAMLToJSON(text)
	if err != nil {
		msg := err.Error()
		if m := yamlLine.FindStringSubmatchIndex(msg); m != nil {
			n, _ := strconv.Atoi(msg[m[2]:m[3]])
			msg = msg[:m[2]] + strconv.Itoa(n+d.line-1) + msg[m[3]:]
		}
		return fmt.Errorf("%w: %s: %s", ErrWorkload, d.where(), msg)
	}
	var obj map[string]any
	if err := json.Unmarshal(js, &obj); err != nil || obj == nil {
		return fmt.Errorf("%w: %s: not a Kubernetes object (a YAML mapping with apiVersion, kind and metadata)", ErrWorkload, d.where())
	}
	u := &unstructured.Unstructured{Object: obj}
	gv, err := schema.ParseGroupVersion(u.GetAPIVersion())
	switch {
	case u.GetAPIVersion() == "" || err != nil:
		return fmt.Errorf("%w: %s: apiVersion %q: want group/version or version", ErrWorkload, d.where(), u.GetAPIVersion())
	case u.GetKind() == "":
		return fmt.Errorf("%w: %s: kind is missing", ErrWorkload, d.where())
	case u.GetName() == "":
		return fmt.Errorf("%w: %s: metadata.name is missing", ErrWorkload, d.where())
	}
	if gv.Group == workv1.GroupName && u.GetKind() == "ManifestWork" {
		return w.addManifestWork(d, js)
	}
	return w.addManifest(d, js)
}

func (w *Workload) addManifest(d *document, js []byte) error {
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(js); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrWorkload, d.where(), err)
	}
	gvk := u.GroupVersionKind()
	o := Object{
		Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind,
		Resource: guessResource(gvk),
		Name:     u.GetName(), Namespace: u.GetNamespace(),
	}
	if o.Kind == "Deployment" {
		o.Replicas = 1
		if r, found, _ := unstructured.NestedInt64(u.Object, "spec", "replicas"); found {
			o.Replicas = int32(r)
		}
	}
	w.Manifests = append(w.Manifests, workv1.Manifest{RawExtension: runtime.RawExtension{Raw: js}})
	w.Objects = append(w.Objects, o)
	return nil
}

func (w *Workload) addManifestWork(d *document, js []byte) error {
	var mw workv1.ManifestWork
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&mw); err != nil {
		return fmt.Errorf("%w: %s: ManifestWork: %v", ErrWorkload, d.where(), err)
	}
	for i, m := range mw.Spec.Workload.Manifests {
		inner := *d
		inner.file = fmt.Sprintf("%s: spec.workload.manifests[%d]", d.where(), i)
		if len(m.Raw) == 0 {
			return fmt.Errorf("%w: %s: empty manifest", ErrWorkload, inner.file)
		}
		if err := w.addManifest(&inner, m.Raw); err != nil {
			return err
		}
	}
	w.Configs = append(w.Configs, mw.Spec.ManifestConfigs...)
	if mw.Spec.DeleteOption != nil {
		w.DeleteOption = mw.Spec.DeleteOption
	}
	if mw.Spec.Executor != nil {
		w.Executor = mw.Spec.Executor
	}
	for k, v := range mw.Labels {
		w.Labels[k] = v
	}
	return nil
}

// asksStatus reports whether a manifest config asks for the object's
// `.status` as JSONPath feedback, which the status model then reports.
func (w *Workload) asksStatus(o Object) bool {
	for _, c := range w.Configs {
		id := c.ResourceIdentifier
		if id.Group != o.Group || id.Resource != o.Resource || id.Name != o.Name || id.Namespace != o.Namespace {
			continue
		}
		for _, r := range c.FeedbackRules {
			if r.Type != workv1.JSONPathsType {
				continue
			}
			for _, p := range r.JsonPaths {
				if p.Path == ".status" {
					return true
				}
			}
		}
	}
	return false
}

// guessResource is the plural resource of a kind, as a RESTMapper without
// discovery guesses it (the agent reports the mapped resource; for the
// built-in kinds the guess is the same).
func guessResource(gvk schema.GroupVersionKind) string {
	plural, _ := meta.UnsafeGuessKindToResource(gvk)
	return plural.Resource
}

// UpdateAnnotation is the annotation a spec update sets on the first
// manifest of a work, to the update's number: every update changes the
// bundle, as a team's rollout does, whether or not the workload uses
// {{.Update}}.
const UpdateAnnotation = "cereplay.io/update"

// updated returns a copy of w for its u-th update: the first manifest
// carries UpdateAnnotation = u.
func (w *Workload) updated(u int) (*Workload, error) {
	c := *w
	c.Manifests = append([]workv1.Manifest(nil), w.Manifests...)
	m := &c.Manifests[0]
	if m.Object != nil {
		obj := m.Object.DeepCopyObject()
		acc, err := meta.Accessor(obj)
		if err != nil {
			return nil, fmt.Errorf("generate: annotate the first manifest: %w", err)
		}
		acc.SetAnnotations(withUpdate(acc.GetAnnotations(), u))
		m.Object = obj
		return &c, nil
	}
	u0 := &unstructured.Unstructured{}
	if err := u0.UnmarshalJSON(m.Raw); err != nil {
		return nil, fmt.Errorf("generate: annotate the first manifest: %w", err)
	}
	u0.SetAnnotations(withUpdate(u0.GetAnnotations(), u))
	raw, err := u0.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("generate: annotate the first manifest: %w", err)
	}
	m.Raw = raw
	return &c, nil
}

func withUpdate(a map[string]string, u int) map[string]string {
	c := make(map[string]string, len(a)+1)
	for k, v := range a {
		c[k] = v
	}
	c[UpdateAnnotation] = strconv.Itoa(u)
	return c
}

// maxRendered bounds what a document may render to: twice the 500 KiB an
// agent accepts for a whole bundle. A {{range}} cannot fill the memory.
const maxRendered = 1 << 20

// limitedWriter fails a template's execution past its limit.
type limitedWriter struct {
	b    *bytes.Buffer
	left int
}

func (w *limitedWriter) Write(p []byte) (int, error) {
	if len(p) > w.left {
		return 0, fmt.Errorf("renders to more than %d bytes", maxRendered)
	}
	w.left -= len(p)
	return w.b.Write(p)
}

// checkTemplate refuses {{define}}, {{block}} and {{template}}: a
// document is one template, and a template calling itself would render
// for ever without writing a byte.
func checkTemplate(t *texttemplate.Template) error {
	if len(t.Templates()) > 1 {
		return errors.New("{{define}} and {{block}} are not supported")
	}
	var walk func(n parse.Node) error
	walk = func(n parse.Node) error {
		switch n := n.(type) {
		case *parse.TemplateNode:
			return fmt.Errorf("{{template %q}} is not supported", n.Name)
		case *parse.ListNode:
			if n == nil {
				return nil
			}
			for _, c := range n.Nodes {
				if err := walk(c); err != nil {
					return err
				}
			}
		case *parse.IfNode:
			return walkBranch(walk, &n.BranchNode)
		case *parse.RangeNode:
			return walkBranch(walk, &n.BranchNode)
		case *parse.WithNode:
			return walkBranch(walk, &n.BranchNode)
		}
		return nil
	}
	if t.Tree == nil {
		return nil
	}
	return walk(t.Tree.Root)
}

func walkBranch(walk func(parse.Node) error, b *parse.BranchNode) error {
	if err := walk(b.List); err != nil {
		return err
	}
	if b.ElseList != nil {
		return walk(b.ElseList)
	}
	return nil
}
