package manifests_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
)

// exception is what a pod template may do beyond the rules every other pod
// follows. Each one is justified next to the workload's manifest.
type exception struct {
	root      bool     // run as UID 0 (runAsNonRoot not true)
	hostPID   bool     // share the host's PID namespace
	hostPaths []string // hostPath volumes it may mount, read-only
	// writable are hostPath volumes it may mount writable.
	writable []string
}

// exceptions: the gpu-agent only (manifests/base/gpu-agent/daemonset.yaml:
// NVML reports host PIDs and /proc must show them; the kubelet's
// pod-resources socket is root's; a device plugin serves its socket in the
// kubelet's device-plugin directory; on the local real node, it writes the
// simulated GPUs' CDI spec for the runtime).
var exceptions = map[string]exception{
	"DaemonSet gpufleet-system/gpufleet-gpu-agent": {
		root: true, hostPID: true,
		hostPaths: []string{"/var/lib/kubelet/pod-resources", "/var/lib/kubelet/device-plugins", "/var/run/cdi"},
		writable:  []string{"/var/lib/kubelet/device-plugins", "/var/run/cdi"},
	},
}

func TestKustomizationsBuild(t *testing.T) {
	e := newEnv(t)
	builds := build(t, e)
	names := make([]string, len(builds))
	for i, b := range builds {
		names[i] = b.name
		seen := map[string]bool{}
		for _, u := range b.objs {
			if u.GetName() == "" || u.GetKind() == "" || u.GetAPIVersion() == "" {
				t.Errorf("%s: an object without apiVersion, kind or name: %v", b.name, u.Object)
			}
			k := key(u)
			if seen[k] {
				t.Errorf("%s: %s appears twice", b.name, k)
			}
			seen[k] = true
		}
	}
	// The kustomizations the README documents, and base with each component.
	for _, want := range []string{"base", "examples", "examples/rollouts", "examples/model-quality", "overlays/all", "overlays/local", "overlays/local-examples", "base+components/monitoring", "base+components/network-policies", "base+components/whole-gpus"} {
		if !slices.Contains(names, want) {
			t.Errorf("no kustomization %q among %v", want, names)
		}
	}
}

func TestPodTemplates(t *testing.T) {
	e := newEnv(t)
	checked := map[string]bool{}
	for _, b := range build(t, e) {
		ws, err := workloads(b.objs)
		if err != nil {
			t.Errorf("%s: %v", b.name, err)
			continue
		}
		for _, w := range ws {
			name := short(w.obj)
			if checked[name] {
				continue // the same workload in another kustomization
			}
			checked[name] = true
			for _, p := range podProblems(w.tmpl.Spec, exceptions[name]) {
				t.Errorf("%s (%s): %s", name, b.name, p)
			}
		}
	}
	for name := range exceptions {
		if !checked[name] {
			t.Errorf("exception for %s, which no kustomization has: remove it", name)
		}
	}
	if len(checked) < 7 {
		t.Errorf("checked %d workloads, want the 3 of base and the 4 examples at least: %v", len(checked), checked)
	}
}

// podProblems returns every way spec breaks gpufleet's pod rules, beyond
// what ex allows: the restricted Pod Security level's rules (no host
// namespaces or hostPath, non-root, no privilege escalation, every
// capability dropped, RuntimeDefault seccomp) plus a read-only root
// filesystem, CPU and memory requests and limits, images pinned to a tag,
// probes, and an explicit choice about the ServiceAccount token.
func podProblems(spec corev1.PodSpec, ex exception) []string {
	var out []string
	bad := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	if spec.AutomountServiceAccountToken == nil {
		bad("automountServiceAccountToken is unset: say whether the pod needs its token")
	}
	if spec.HostNetwork || spec.HostIPC {
		bad("uses the host's network or IPC namespace")
	}
	if spec.HostPID && !ex.hostPID {
		bad("uses the host's PID namespace")
	}
	readOnlyHost := map[string]bool{}
	for _, v := range spec.Volumes {
		if v.HostPath == nil {
			continue
		}
		if !slices.Contains(ex.hostPaths, v.HostPath.Path) {
			bad("mounts hostPath %s", v.HostPath.Path)
		}
		if !slices.Contains(ex.writable, v.HostPath.Path) {
			readOnlyHost[v.Name] = true
		}
	}
	psc := spec.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	podNonRoot := psc.RunAsNonRoot != nil && *psc.RunAsNonRoot
	podSeccomp := psc.SeccompProfile != nil && psc.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault
	containers := append(append([]corev1.Container(nil), spec.InitContainers...), spec.Containers...)
	for _, c := range containers {
		sc := c.SecurityContext
		if sc == nil {
			bad("container %s: no securityContext", c.Name)
			sc = &corev1.SecurityContext{}
		}
		if !ex.root && !podNonRoot && (sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot) {
			bad("container %s: runAsNonRoot is not true", c.Name)
		}
		if !podSeccomp && (sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault) {
			bad("container %s: seccompProfile is not RuntimeDefault", c.Name)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			bad("container %s: allowPrivilegeEscalation is not false", c.Name)
		}
		if sc.Privileged != nil && *sc.Privileged {
			bad("container %s: privileged", c.Name)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			bad("container %s: readOnlyRootFilesystem is not true", c.Name)
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			bad("container %s: capabilities do not drop ALL", c.Name)
		} else if len(sc.Capabilities.Add) > 0 {
			bad("container %s: adds capabilities %v", c.Name, sc.Capabilities.Add)
		}
		for _, m := range c.VolumeMounts {
			if readOnlyHost[m.Name] && !m.ReadOnly {
				bad("container %s: hostPath volume %s is mounted writable", c.Name, m.Name)
			}
		}
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if q, ok := c.Resources.Requests[r]; !ok || q.IsZero() {
				bad("container %s: no %s request", c.Name, r)
			}
			if q, ok := c.Resources.Limits[r]; !ok || q.IsZero() {
				bad("container %s: no %s limit", c.Name, r)
			}
		}
		if err := pinned(c.Image); err != nil {
			bad("container %s: %v", c.Name, err)
		}
		// Pods that run to completion (Jobs) serve nothing to probe.
		runsToCompletion := spec.RestartPolicy == corev1.RestartPolicyNever || spec.RestartPolicy == corev1.RestartPolicyOnFailure
		if !runsToCompletion && (c.ReadinessProbe == nil || c.LivenessProbe == nil) {
			bad("container %s: needs a readiness and a liveness probe", c.Name)
		}
	}
	return out
}

// pinned checks that an image names a tag other than latest, or a digest.
func pinned(image string) error {
	if strings.Contains(image, "@sha256:") {
		return nil
	}
	name := image[strings.LastIndex(image, "/")+1:]
	i := strings.LastIndex(name, ":")
	switch {
	case i < 0:
		return fmt.Errorf("image %q has no tag: pin one (kustomize `images:`)", image)
	case name[i+1:] == "latest":
		return fmt.Errorf("image %q uses :latest: pin a version", image)
	}
	return nil
}

func TestPinned(t *testing.T) {
	for image, ok := range map[string]bool{
		"gpufleet/gpu-agent:v0.1.0":                  true,
		"registry:5000/gpufleet/gpu-agent:v0.1.0":    true,
		"gpufleet/gpu-agent@sha256:0123456789abcdef": true,
		"gpufleet/gpu-agent":                         false,
		"registry:5000/gpufleet/gpu-agent":           false,
		"gpufleet/gpu-agent:latest":                  false,
	} {
		if err := pinned(image); (err == nil) != ok {
			t.Errorf("pinned(%q) = %v, want ok=%t", image, err, ok)
		}
	}
}

// TestReferences checks that what the objects name exists in the same
// kustomization: selectors select pods, Services back the APIServices, the
// HPA's target and the pods' ServiceAccounts exist, and the adapter's
// --agent-pod-selector selects the gpu-agents.
func TestReferences(t *testing.T) {
	e := newEnv(t)
	for _, b := range append(build(t, e), allChartBuilds(t, e)...) {
		checkReferences(t, b)
	}
}

// checkReferences is TestReferences for one build.
func checkReferences(t *testing.T, b built) {
	t.Helper()
	ws, err := workloads(b.objs)
	if err != nil {
		t.Fatalf("%s: %v", b.name, err)
	}
	selects := func(ns string, sel labels.Selector) bool {
		for _, w := range ws {
			if w.obj.GetNamespace() == ns && sel.Matches(labels.Set(w.tmpl.Labels)) {
				return true
			}
		}
		return false
	}
	has := func(kind, ns, name string) bool {
		return slices.ContainsFunc(b.objs, func(u *unstructured.Unstructured) bool {
			return u.GetKind() == kind && u.GetNamespace() == ns && u.GetName() == name
		})
	}
	for _, u := range b.objs {
		ns := u.GetNamespace()
		var sel labels.Selector
		switch u.GetKind() {
		case "Service":
			m, _, _ := unstructured.NestedStringMap(u.Object, "spec", "selector")
			sel = labels.SelectorFromSet(m)
		case "PodDisruptionBudget", "NetworkPolicy":
			path := []string{"spec", "selector", "matchLabels"}
			if u.GetKind() == "NetworkPolicy" {
				path = []string{"spec", "podSelector", "matchLabels"}
			}
			m, _, _ := unstructured.NestedStringMap(u.Object, path...)
			sel = labels.SelectorFromSet(m)
		case "APIService":
			svc, _, _ := unstructured.NestedString(u.Object, "spec", "service", "name")
			svcNS, _, _ := unstructured.NestedString(u.Object, "spec", "service", "namespace")
			if !has("Service", svcNS, svc) {
				t.Errorf("%s: %s names Service %s/%s, which it does not have", b.name, u.GetName(), svcNS, svc)
			}
		case "HorizontalPodAutoscaler":
			kind, _, _ := unstructured.NestedString(u.Object, "spec", "scaleTargetRef", "kind")
			name, _, _ := unstructured.NestedString(u.Object, "spec", "scaleTargetRef", "name")
			if !has(kind, ns, name) {
				t.Errorf("%s: HPA %s scales %s %s/%s, which it does not have", b.name, u.GetName(), kind, ns, name)
			}
		}
		if sel != nil && (sel.Empty() || !selects(ns, sel)) {
			t.Errorf("%s: %s selects no pod template (%s)", b.name, short(u), sel)
		}
	}
	for _, w := range ws {
		if sa := w.tmpl.Spec.ServiceAccountName; sa != "" && !has("ServiceAccount", w.obj.GetNamespace(), sa) {
			t.Errorf("%s: %s runs as ServiceAccount %s, which it does not have", b.name, short(w.obj), sa)
		}
		for _, c := range w.tmpl.Spec.Containers {
			for _, arg := range c.Args {
				v, ok := strings.CutPrefix(arg, "--agent-pod-selector=")
				if !ok {
					continue
				}
				sel, err := labels.Parse(v)
				if err != nil {
					t.Errorf("%s: %s: %v", b.name, arg, err)
				} else if !selects("gpufleet-system", sel) || !selectsAgent(ws, sel) {
					t.Errorf("%s: %s does not select the gpu-agent pods", b.name, arg)
				}
			}
		}
	}
}

func selectsAgent(ws []workload, sel labels.Selector) bool {
	for _, w := range ws {
		if short(w.obj) == "DaemonSet gpufleet-system/gpufleet-gpu-agent" {
			return sel.Matches(labels.Set(w.tmpl.Labels))
		}
	}
	return false
}

// TestPodProblems makes sure each rule of podProblems bites.
func TestPodProblems(t *testing.T) {
	good := func() corev1.PodSpec {
		return corev1.PodSpec{
			AutomountServiceAccountToken: new(false),
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:   new(true),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name:  "c",
				Image: "gpufleet/inference-server:v0.1.0",
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: new(false),
					ReadOnlyRootFilesystem:   new(true),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("1Gi")},
					Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("1Gi")},
				},
				ReadinessProbe: &corev1.Probe{},
				LivenessProbe:  &corev1.Probe{},
			}},
		}
	}
	if p := podProblems(good(), exception{}); len(p) != 0 {
		t.Fatalf("a compliant pod has problems: %v", p)
	}
	for name, tc := range map[string]struct {
		breakIt func(*corev1.PodSpec)
		allow   exception
		want    string
	}{
		"token unset":   {func(s *corev1.PodSpec) { s.AutomountServiceAccountToken = nil }, exception{}, "automountServiceAccountToken"},
		"hostPID":       {func(s *corev1.PodSpec) { s.HostPID = true }, exception{}, "PID namespace"},
		"hostNetwork":   {func(s *corev1.PodSpec) { s.HostNetwork = true }, exception{}, "network or IPC"},
		"root":          {func(s *corev1.PodSpec) { s.SecurityContext.RunAsNonRoot = nil }, exception{}, "runAsNonRoot"},
		"seccomp":       {func(s *corev1.PodSpec) { s.SecurityContext.SeccompProfile = nil }, exception{}, "seccompProfile"},
		"escalation":    {func(s *corev1.PodSpec) { s.Containers[0].SecurityContext.AllowPrivilegeEscalation = nil }, exception{}, "allowPrivilegeEscalation"},
		"writable root": {func(s *corev1.PodSpec) { s.Containers[0].SecurityContext.ReadOnlyRootFilesystem = new(false) }, exception{}, "readOnlyRootFilesystem"},
		"capabilities":  {func(s *corev1.PodSpec) { s.Containers[0].SecurityContext.Capabilities.Drop = nil }, exception{}, "drop ALL"},
		"added cap": {func(s *corev1.PodSpec) {
			s.Containers[0].SecurityContext.Capabilities.Add = []corev1.Capability{"NET_ADMIN"}
		}, exception{}, "adds capabilities"},
		"memory limit":    {func(s *corev1.PodSpec) { delete(s.Containers[0].Resources.Limits, corev1.ResourceMemory) }, exception{}, "no memory limit"},
		"cpu request":     {func(s *corev1.PodSpec) { delete(s.Containers[0].Resources.Requests, corev1.ResourceCPU) }, exception{}, "no cpu request"},
		"latest":          {func(s *corev1.PodSpec) { s.Containers[0].Image = "gpufleet/inference-server:latest" }, exception{}, ":latest"},
		"no probes":       {func(s *corev1.PodSpec) { s.Containers[0].LivenessProbe = nil }, exception{}, "probe"},
		"hostPath":        {addHostPath("/var/lib/kubelet/pod-resources", true), exception{}, "mounts hostPath"},
		"writable host":   {addHostPath("/var/lib/kubelet/pod-resources", false), exception{hostPaths: []string{"/var/lib/kubelet/pod-resources"}}, "mounted writable"},
		"other hostPath":  {addHostPath("/", true), exception{hostPaths: []string{"/var/lib/kubelet/pod-resources"}}, "mounts hostPath /"},
		"container no sc": {func(s *corev1.PodSpec) { s.Containers[0].SecurityContext = nil }, exception{}, "no securityContext"},
	} {
		spec := good()
		tc.breakIt(&spec)
		p := podProblems(spec, tc.allow)
		if !slices.ContainsFunc(p, func(s string) bool { return strings.Contains(s, tc.want) }) {
			t.Errorf("%s: problems %q, want one mentioning %q", name, p, tc.want)
		}
	}
	// What an exception allows is no problem.
	spec := good()
	spec.HostPID = true
	spec.SecurityContext.RunAsNonRoot = new(false)
	addHostPath("/var/lib/kubelet/pod-resources", true)(&spec)
	if p := podProblems(spec, exceptions["DaemonSet gpufleet-system/gpufleet-gpu-agent"]); len(p) != 0 {
		t.Errorf("the gpu-agent's exception still reports %v", p)
	}
}

func addHostPath(path string, readOnly bool) func(*corev1.PodSpec) {
	return func(s *corev1.PodSpec) {
		s.Volumes = append(s.Volumes, corev1.Volume{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: path}}})
		s.Containers[0].VolumeMounts = append(s.Containers[0].VolumeMounts, corev1.VolumeMount{Name: "host", MountPath: "/host", ReadOnly: readOnly})
	}
}
