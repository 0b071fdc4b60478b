package deploy

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"

	"github.com/cereplay/cereplay/replay"
)

// decode reads a manifest and decodes it strictly: a field the API type
// does not have, or a value of the wrong type, fails the test.
func decode(t *testing.T, name string, into any) {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, into); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// kustomization is the part of kustomize's type these manifests use.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace"`
	Resources  []string `json:"resources"`
	Images     []struct {
		Name    string `json:"name"`
		NewName string `json:"newName"`
		NewTag  string `json:"newTag"`
	} `json:"images"`
}

type manifests struct {
	job    batchv1.Job
	config corev1.ConfigMap
	secret corev1.Secret
	pvc    corev1.PersistentVolumeClaim
}

func load(t *testing.T) *manifests {
	t.Helper()
	var k kustomization
	decode(t, "kustomization.yaml", &k)
	if k.Kind != "Kustomization" || !slices.Equal(k.Resources, []string{"configmap.yaml", "results-pvc.yaml", "job.yaml"}) {
		t.Fatalf("kustomization: kind %q, resources %v", k.Kind, k.Resources)
	}
	if len(k.Images) != 1 || k.Images[0].Name != "cereplay" || k.Images[0].NewName == "" {
		t.Fatalf("kustomization images %+v: want the job's image name mapped to a registry", k.Images)
	}
	m := &manifests{}
	decode(t, "job.yaml", &m.job)
	decode(t, "configmap.yaml", &m.config)
	decode(t, "secret.example.yaml", &m.secret)
	decode(t, "results-pvc.yaml", &m.pvc)
	for _, o := range []struct{ kind, want string }{
		{m.job.Kind, "Job"}, {m.config.Kind, "ConfigMap"}, {m.secret.Kind, "Secret"}, {m.pvc.Kind, "PersistentVolumeClaim"},
	} {
		if o.kind != o.want {
			t.Fatalf("kind %q, want %q", o.kind, o.want)
		}
	}
	return m
}

// flagValue returns the argument after flag in args.
func flagValue(t *testing.T, args []string, flag string) string {
	t.Helper()
	i := slices.Index(args, flag)
	if i < 0 || i+1 >= len(args) {
		t.Fatalf("args %v have no %s VALUE", args, flag)
	}
	return args[i+1]
}

func TestJobShardsOneSchedule(t *testing.T) {
	m := load(t)
	job := m.job
	spec := job.Spec
	if spec.CompletionMode == nil || *spec.CompletionMode != batchv1.IndexedCompletion {
		t.Fatalf("completionMode %v, want Indexed", spec.CompletionMode)
	}
	if spec.Completions == nil || spec.Parallelism == nil || *spec.Completions != *spec.Parallelism || *spec.Completions < 2 {
		t.Fatalf("completions %v, parallelism %v: want equal, 2 or more", spec.Completions, spec.Parallelism)
	}
	n := int(*spec.Completions)
	if spec.BackoffLimit == nil || *spec.BackoffLimit != 0 {
		t.Errorf("backoffLimit %v, want 0: a retried shard would publish its specs twice", spec.BackoffLimit)
	}
	pod := spec.Template.Spec
	if pod.RestartPolicy != corev1.RestartPolicyNever || len(pod.Containers) != 1 {
		t.Fatalf("restartPolicy %q, %d containers", pod.RestartPolicy, len(pod.Containers))
	}
	c := pod.Containers[0]
	if c.Args[0] != "replay" {
		t.Fatalf("args %v do not run replay", c.Args)
	}

	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	// Every $(VAR) in the args is declared (Kubernetes leaves an unknown
	// one as it is), from the ConfigMap unless it is the index.
	for _, a := range c.Args {
		for _, ref := range regexp.MustCompile(`\$\(([A-Z_]+)\)`).FindAllStringSubmatch(a, -1) {
			e, ok := env[ref[1]]
			if !ok {
				t.Errorf("arg %q names $(%s), which the container does not declare", a, ref[1])
				continue
			}
			if ref[1] == "JOB_COMPLETION_INDEX" {
				continue
			}
			if e.ValueFrom == nil || e.ValueFrom.ConfigMapKeyRef == nil || e.ValueFrom.ConfigMapKeyRef.Name != m.config.Name {
				t.Errorf("$(%s) does not come from ConfigMap %s", ref[1], m.config.Name)
			} else if _, ok := m.config.Data[e.ValueFrom.ConfigMapKeyRef.Key]; !ok {
				t.Errorf("$(%s) names key %q, which ConfigMap %s does not have", ref[1], e.ValueFrom.ConfigMapKeyRef.Key, m.config.Name)
			}
		}
	}

	// The index goes into --shard, over as many shards as completions.
	idx := env["JOB_COMPLETION_INDEX"]
	if idx.ValueFrom == nil || idx.ValueFrom.FieldRef == nil || idx.ValueFrom.FieldRef.FieldPath != "metadata.annotations['batch.kubernetes.io/job-completion-index']" {
		t.Errorf("JOB_COMPLETION_INDEX is %+v, want the pod's completion index annotation", idx)
	}
	shard := flagValue(t, c.Args, "--shard")
	if want := fmt.Sprintf("$(JOB_COMPLETION_INDEX)/%d", n); shard != want {
		t.Fatalf("--shard %s, want %s (completions %d)", shard, want, n)
	}
	for i := range n {
		if s, err := replay.ParseShard(strings.ReplaceAll(shard, "$(JOB_COMPLETION_INDEX)", fmt.Sprint(i))); err != nil || s.Index != i || s.Count != n {
			t.Errorf("pod %d plays shard %+v, %v", i, s, err)
		}
	}
	// One --start-at for all: from one ConfigMap key, an RFC 3339 instant.
	if v := flagValue(t, c.Args, "--start-at"); v != "$(START_AT)" {
		t.Fatalf("--start-at %s, want $(START_AT)", v)
	}
	if _, err := time.Parse(time.RFC3339Nano, m.config.Data[env["START_AT"].ValueFrom.ConfigMapKeyRef.Key]); err != nil {
		t.Errorf("the ConfigMap's start-at: %v", err)
	}
	// Each shard its own results folder, on the results volume.
	if out := flagValue(t, c.Args, "--out"); !strings.Contains(out, "$(JOB_COMPLETION_INDEX)") {
		t.Errorf("--out %s is the same for every shard", out)
	}
	if err := replayFlagsExist(c.Args[1:]); err != nil {
		t.Error(err)
	}
}

// replayFlagsExist checks every --flag of args is one cereplay replay has
// (its flags are declared in cmd/cereplay/replay.go and source.go).
func replayFlagsExist(args []string) error {
	known := map[string]bool{}
	for _, f := range []string{"replay.go", "source.go"} {
		b, err := os.ReadFile(filepath.Join("..", "cmd", "cereplay", f))
		if err != nil {
			return err
		}
		for _, m := range regexp.MustCompile(`Name: +"([a-z-]+)"`).FindAllStringSubmatch(string(b), -1) {
			known[m[1]] = true
		}
	}
	for _, a := range args {
		if name, ok := strings.CutPrefix(a, "--"); ok && !known[name] {
			return fmt.Errorf("job.yaml passes --%s, which cereplay replay does not have", name)
		}
	}
	return nil
}

func TestJobResourcesAndSecurity(t *testing.T) {
	m := load(t)
	pod := m.job.Spec.Template.Spec
	c := pod.Containers[0]
	req, lim := c.Resources.Requests, c.Resources.Limits
	if req.Cpu().Cmp(resource.MustParse("500m")) < 0 || req.Memory().Cmp(resource.MustParse("256Mi")) < 0 {
		t.Errorf("requests cpu %v memory %v: want at least half a core and 256Mi", req.Cpu(), req.Memory())
	}
	// The replayer's soft heap limit is 464 MiB (--memory-limit-mib).
	if lim.Memory().Cmp(resource.MustParse("512Mi")) < 0 || lim.Memory().Cmp(*req.Memory()) < 0 {
		t.Errorf("memory limit %v: want at least 512Mi and the request", lim.Memory())
	}
	if !lim.Cpu().IsZero() {
		t.Errorf("cpu limit %v: throttling makes sends late", lim.Cpu())
	}
	sc, csc := pod.SecurityContext, c.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
		t.Fatalf("pod security context %+v: want runAsNonRoot and a non-zero runAsUser", sc)
	}
	if csc == nil || csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation ||
		csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem ||
		csc.Capabilities == nil || !slices.Equal(csc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Fatalf("container security context %+v", csc)
	}

	// Volumes: the trace read-only, results writable, the Secret's files
	// where the args look for them.
	mounts := map[string]corev1.VolumeMount{}
	for _, vm := range c.VolumeMounts {
		mounts[vm.Name] = vm
	}
	vols := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		vols[v.Name] = v
	}
	if tr := vols["traces"]; tr.PersistentVolumeClaim == nil || !tr.PersistentVolumeClaim.ReadOnly || !mounts["traces"].ReadOnly {
		t.Errorf("the traces volume is not mounted read-only: %+v %+v", tr, mounts["traces"])
	}
	if trace := m.config.Data["trace"]; !strings.HasPrefix(trace, mounts["traces"].MountPath+"/") {
		t.Errorf("the ConfigMap's trace %s is not on the traces volume (%s)", trace, mounts["traces"].MountPath)
	}
	if res := vols["results"]; res.PersistentVolumeClaim == nil || res.PersistentVolumeClaim.ClaimName != m.pvc.Name || mounts["results"].ReadOnly {
		t.Errorf("results volume %+v, mount %+v: want PVC %s, writable", res, mounts["results"], m.pvc.Name)
	}
	if !slices.Contains(m.pvc.Spec.AccessModes, corev1.ReadWriteMany) {
		t.Errorf("results PVC access modes %v: shards on several nodes need ReadWriteMany", m.pvc.Spec.AccessModes)
	}
	if out := flagValue(t, c.Args, "--out"); !strings.HasPrefix(out, mounts["results"].MountPath+"/") {
		t.Errorf("--out %s is not on the results volume (%s)", out, mounts["results"].MountPath)
	}
	cred := vols["credentials"]
	if cred.Secret == nil || cred.Secret.SecretName != m.secret.Name || cred.Secret.DefaultMode == nil || *cred.Secret.DefaultMode&0o007 != 0 {
		t.Fatalf("credentials volume %+v: want Secret %s, not world-readable", cred, m.secret.Name)
	}
	for _, f := range []string{"--ca-file", "--token-file"} {
		path := flagValue(t, c.Args, f)
		key, ok := strings.CutPrefix(path, mounts["credentials"].MountPath+"/")
		if _, inSecret := m.secret.StringData[key]; !ok || !inSecret {
			t.Errorf("%s %s is not a key of Secret %s mounted at %s", f, path, m.secret.Name, mounts["credentials"].MountPath)
		}
	}
	if tm := m.config.Data["target-metrics"]; !strings.HasPrefix(tm, "http") || !strings.Contains(tm, ":8080/metrics") {
		t.Errorf("target-metrics %q: want Maestro's metrics Service, port 8080", tm)
	}
}

// The Dockerfile builds a static binary in one stage and runs it as a
// non-root user on a distroless base in the other; where a container
// builder is installed, the image builds.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	froms := regexp.MustCompile(`(?m)^FROM `).FindAllStringIndex(df, -1)
	last := df[froms[len(froms)-1][0]:]
	switch {
	case len(froms) < 2:
		t.Fatal("the Dockerfile is not multi-stage")
	case !strings.Contains(df, "CGO_ENABLED=0"):
		t.Error("the binary is not built static (CGO_ENABLED=0)")
	case !regexp.MustCompile(`^FROM (gcr.io/distroless/static\S*|scratch)`).MatchString(last):
		t.Errorf("the final stage %q is not distroless/static or scratch", strings.SplitN(last, "\n", 2)[0])
	case !regexp.MustCompile(`(?m)^USER [1-9][0-9]*(:[1-9][0-9]*)?$`).MatchString(last):
		t.Error("the final stage does not run as a numeric non-root USER")
	}

	if testing.Short() {
		t.Skip("-short: the image build is not tried")
	}
	var builder string
	for _, b := range []string{"docker", "podman", "buildah"} {
		if _, err := exec.LookPath(b); err == nil {
			builder = b
			break
		}
	}
	if builder == "" {
		t.Skip("no container builder (docker, podman or buildah) on PATH: the image build is not tried here")
	}
	args := []string{"build", "-f", "deploy/Dockerfile", "-t", "cereplay:deploy-test", "."}
	if builder == "buildah" {
		args = append([]string{"bud"}, args[1:]...)
	}
	cmd := exec.Command(builder, args...)
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		if builder == "docker" && strings.Contains(string(out), "Cannot connect to the Docker daemon") {
			t.Skipf("docker is installed but no daemon answers: the image build is not tried here")
		}
		t.Fatalf("%s build: %v\n%s", builder, err, out)
	}
}

// The README's loader pod and traces volume fit the Job: the claims it
// mounts are the ones the Job reads the trace from and writes results to.
func TestExamples(t *testing.T) {
	m := load(t)
	var pvc corev1.PersistentVolumeClaim
	var pod corev1.Pod
	decode(t, "examples/traces-pvc.yaml", &pvc)
	decode(t, "examples/loader-pod.yaml", &pod)
	claims := map[string]string{} // volume name -> claim, in the Job
	for _, v := range m.job.Spec.Template.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			claims[v.Name] = v.PersistentVolumeClaim.ClaimName
		}
	}
	if claims["traces"] != pvc.Name {
		t.Errorf("the Job reads the trace from claim %q, the example makes %q", claims["traces"], pvc.Name)
	}
	var mounted []string
	for _, v := range pod.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			mounted = append(mounted, v.PersistentVolumeClaim.ClaimName)
		}
	}
	slices.Sort(mounted)
	if want := []string{m.pvc.Name, pvc.Name}; !slices.Equal(mounted, want) {
		t.Errorf("the loader mounts %v, want %v", mounted, want)
	}
	if sc := pod.Spec.SecurityContext; sc == nil || sc.RunAsUser == nil || sc.FSGroup == nil ||
		*sc.RunAsUser != *m.job.Spec.Template.Spec.SecurityContext.RunAsUser || *sc.FSGroup != *m.job.Spec.Template.Spec.SecurityContext.FSGroup {
		t.Errorf("the loader's user and group %+v differ from the replayer's: it would write files the shards cannot read", sc)
	}
}

// Where kubectl is installed, the kustomization renders (kubectl kustomize
// needs no cluster) into the same objects, in the namespace, with the image
// set.
func TestKustomizeBuild(t *testing.T) {
	if _, err := exec.LookPath("kubectl"); err != nil {
		t.Skip("no kubectl on PATH: the kustomization is checked by TestJobShardsOneSchedule only")
	}
	out, err := exec.Command("kubectl", "kustomize", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl kustomize: %v\n%s", err, out)
	}
	var k kustomization
	decode(t, "kustomization.yaml", &k)
	kinds := map[string]bool{}
	for _, doc := range strings.Split(string(out), "\n---\n") {
		var meta struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Namespace string `json:"namespace"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatal(err)
		}
		kinds[meta.Kind] = true
		if meta.Metadata.Namespace != k.Namespace {
			t.Errorf("%s in namespace %q, want %q", meta.Kind, meta.Metadata.Namespace, k.Namespace)
		}
		if meta.Kind != "Job" {
			continue
		}
		var job batchv1.Job
		if err := yaml.UnmarshalStrict([]byte(doc), &job); err != nil {
			t.Fatalf("rendered Job: %v", err)
		}
		if img, want := job.Spec.Template.Spec.Containers[0].Image, k.Images[0].NewName+":"+k.Images[0].NewTag; img != want {
			t.Errorf("rendered image %q, want %q", img, want)
		}
	}
	if !kinds["Job"] || !kinds["ConfigMap"] || !kinds["PersistentVolumeClaim"] {
		t.Errorf("rendered kinds %v", kinds)
	}
}

// Every manifest the README's steps name exists.
func TestREADMENamesManifests(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	named := regexp.MustCompile(`deploy/[a-z0-9/.-]+\.yaml`).FindAllString(string(b), -1)
	if len(named) < 3 {
		t.Fatalf("the README names %v of deploy/", named)
	}
	for _, n := range named {
		if _, err := os.Stat(filepath.Join("..", n)); err != nil {
			t.Errorf("the README names %s: %v", n, err)
		}
	}
}
