package manifests_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/gpufleet/gpufleet/pkg/localcluster"
)

// env is the repository and the kubectl that builds its kustomizations.
type env struct {
	root    string // module root
	kubectl string
}

func newEnv(t testing.TB) env {
	t.Helper()
	root, err := localcluster.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return env{root: root, kubectl: tool(t, localcluster.Kubectl)}
}

// tool returns the path of one of bin/'s tools (localcluster's binary
// names), building it first if it is missing.
func tool(t testing.TB, name string) string {
	t.Helper()
	binDir, err := localcluster.DefaultBinDir()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bins, err := localcluster.EnsureBinaries(ctx, binDir, name)
	if err != nil {
		t.Fatal(err)
	}
	return bins[name]
}

// kubectl runs kubectl with stdin and returns its stdout and stderr.
func (e env) run(stdin []byte, args ...string) (stdout, stderr []byte, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.kubectl, args...)
	var out, errOut bytes.Buffer
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	if err != nil {
		err = fmt.Errorf("kubectl %s: %w\n%s", strings.Join(args, " "), err, errOut.Bytes())
	}
	return out.Bytes(), errOut.Bytes(), err
}

// target is one kustomization the tests build and apply.
type target struct {
	name string // what the test reports: "base", "base+components/monitoring", ...
	dir  string
}

// targets returns every kustomization under manifests/, and for every
// kustomize Component there base plus that component alone (a component
// cannot be built by itself), in a temporary kustomization.
func targets(t testing.TB, e env) []target {
	t.Helper()
	manifests := filepath.Join(e.root, "manifests")
	var out []target
	var components []string
	err := filepath.WalkDir(manifests, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "kustomization.yaml" {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var k struct {
			Kind string `json:"kind"`
		}
		if err := yaml.Unmarshal(data, &k); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		dir := filepath.Dir(path)
		rel, _ := filepath.Rel(manifests, dir)
		switch k.Kind {
		case "", "Kustomization":
			out = append(out, target{name: filepath.ToSlash(rel), dir: dir})
		case "Component":
			components = append(components, dir)
		default:
			return fmt.Errorf("%s: kind %q, want Kustomization or Component", path, k.Kind)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatalf("no kustomization under %s", manifests)
	}
	base := filepath.Join(manifests, "base")
	for _, c := range components {
		dir := t.TempDir()
		// kustomize accepts only relative paths to other kustomizations.
		relBase, err1 := filepath.Rel(dir, base)
		relComp, err2 := filepath.Rel(dir, c)
		if err := errors.Join(err1, err2); err != nil {
			t.Fatal(err)
		}
		k := fmt.Sprintf("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- %s\ncomponents:\n- %s\n", relBase, relComp)
		if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(manifests, c)
		out = append(out, target{name: "base+" + filepath.ToSlash(rel), dir: dir})
	}
	return out
}

// built is a kustomization's output.
type built struct {
	target
	yaml []byte
	objs []*unstructured.Unstructured
}

// build runs `kubectl kustomize` on every target and decodes the output.
func build(t testing.TB, e env) []built {
	t.Helper()
	var out []built
	for _, tg := range targets(t, e) {
		data, _, err := e.run(nil, "kustomize", tg.dir)
		if err != nil {
			t.Fatalf("building %s: %v", tg.name, err)
		}
		objs, err := decodeObjects(data)
		if err != nil {
			t.Fatalf("decoding the output of %s: %v", tg.name, err)
		}
		if len(objs) == 0 {
			t.Fatalf("%s builds no objects", tg.name)
		}
		out = append(out, built{target: tg, yaml: data, objs: objs})
	}
	return out
}

// buildOne returns the build of the named target.
func buildOne(t testing.TB, builds []built, name string) built {
	t.Helper()
	for _, b := range builds {
		if b.name == name {
			return b
		}
	}
	t.Fatalf("no kustomization %q", name)
	return built{}
}

// decodeObjects splits multi-document YAML into objects.
func decodeObjects(data []byte) ([]*unstructured.Unstructured, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out []*unstructured.Unstructured
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		j, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, err
		}
		if string(bytes.TrimSpace(j)) == "null" {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(j); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
}

// key names an object uniquely within a cluster.
func key(u *unstructured.Unstructured) string {
	gvk := u.GroupVersionKind()
	if ns := u.GetNamespace(); ns != "" {
		return fmt.Sprintf("%s.%s %s/%s", gvk.Kind, gvk.Group, ns, u.GetName())
	}
	return fmt.Sprintf("%s.%s %s", gvk.Kind, gvk.Group, u.GetName())
}

// short names a workload the way the exception list does: "DaemonSet ns/name".
func short(u *unstructured.Unstructured) string {
	return fmt.Sprintf("%s %s/%s", u.GetKind(), u.GetNamespace(), u.GetName())
}

// templatePaths are where each workload kind keeps its pod template.
var templatePaths = map[string][]string{
	"Deployment":  {"spec", "template"},
	"DaemonSet":   {"spec", "template"},
	"StatefulSet": {"spec", "template"},
	"ReplicaSet":  {"spec", "template"},
	"Job":         {"spec", "template"},
	"CronJob":     {"spec", "jobTemplate", "spec", "template"},
	"Rollout":     {"spec", "template"}, // argoproj.io
}

// workload is an object with a pod template.
type workload struct {
	obj  *unstructured.Unstructured
	tmpl corev1.PodTemplateSpec
}

// workloads returns the objects with pod templates, their templates decoded
// strictly (an unknown field is an error).
func workloads(objs []*unstructured.Unstructured) ([]workload, error) {
	var out []workload
	for _, u := range objs {
		var m map[string]any
		if u.GetKind() == "Pod" {
			m = map[string]any{"metadata": u.Object["metadata"], "spec": u.Object["spec"]}
		} else if path, ok := templatePaths[u.GetKind()]; ok {
			var found bool
			var err error
			m, found, err = unstructured.NestedMap(u.Object, path...)
			if err != nil || !found {
				return nil, fmt.Errorf("%s: no pod template at %s: %v", short(u), strings.Join(path, "."), err)
			}
		} else {
			continue
		}
		var tmpl corev1.PodTemplateSpec
		if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(m, &tmpl, true); err != nil {
			return nil, fmt.Errorf("%s: pod template: %w", short(u), err)
		}
		out = append(out, workload{obj: u, tmpl: tmpl})
	}
	return out, nil
}
