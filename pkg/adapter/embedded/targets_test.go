package embedded

import (
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/gpufleet/gpufleet/pkg/adapter/scrape"
	"github.com/gpufleet/gpufleet/pkg/names"
)

const agentLabel = "app.kubernetes.io/name"

var agentSelector = labels.SelectorFromSet(labels.Set{agentLabel: "gpu-agent"})

// testPod is a running pod on node-a with IP 10.0.0.1; opts edit it.
func testPod(ns, name string, opts ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.PodSpec{NodeName: "node-a"},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.1"},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

// annotated sets annotations from key, value pairs.
func annotated(kv ...string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
		for i := 0; i+1 < len(kv); i += 2 {
			p.Annotations[kv[i]] = kv[i+1]
		}
	}
}

func scrapeOn(kv ...string) func(*corev1.Pod) {
	return annotated(append([]string{names.AnnotationScrape, "true"}, kv...)...)
}

func agent(p *corev1.Pod) { p.Labels = map[string]string{agentLabel: "gpu-agent"} }

func onNode(node, ip string) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.Spec.NodeName, p.Status.PodIP = node, ip }
}

func podTarget(ns, name, node, url string) scrape.Target {
	return scrape.Target{Key: PodKey(ns, name), URL: url, Labels: map[string]string{"namespace": ns, "pod": name, "node": node}}
}

func agentTarget(node, url string) scrape.Target {
	return scrape.Target{Key: NodeKey(node), URL: url, Labels: map[string]string{"node": node}}
}

func sortTargets(ts []scrape.Target) []scrape.Target {
	sort.Slice(ts, func(i, j int) bool { return ts[i].Key < ts[j].Key })
	return ts
}

func TestKeys(t *testing.T) {
	if got, want := PodKey("ml", "web"), "pod/ml/web"; got != want {
		t.Errorf("PodKey = %q, want %q", got, want)
	}
	if got, want := NodeKey("node-a"), "node/node-a"; got != want {
		t.Errorf("NodeKey = %q, want %q", got, want)
	}
}

func TestTargets(t *testing.T) {
	deleting := func(p *corev1.Pod) { now := metav1.Now(); p.DeletionTimestamp = &now }
	phase := func(ph corev1.PodPhase) func(*corev1.Pod) { return func(p *corev1.Pod) { p.Status.Phase = ph } }
	tests := []struct {
		name     string
		pods     []*corev1.Pod
		selector labels.Selector // agentSelector when nil
		noAgents bool            // pass a nil selector
		want     []scrape.Target
		// wantErrs maps namespace/name to the annotation its error names.
		wantErrs map[string]string
	}{
		{
			name: "no scrape annotation",
			pods: []*corev1.Pod{testPod("ml", "web", annotated(names.AnnotationScrapePort, "9000"))},
		},
		{
			name: "scrape not true",
			pods: []*corev1.Pod{
				testPod("ml", "false", annotated(names.AnnotationScrape, "false")),
				testPod("ml", "upper", annotated(names.AnnotationScrape, "True")),
				testPod("ml", "empty", annotated(names.AnnotationScrape, "")),
			},
		},
		{
			name: "defaults: port 8000, path /metrics",
			pods: []*corev1.Pod{testPod("ml", "web", scrapeOn())},
			want: []scrape.Target{podTarget("ml", "web", "node-a", "http://10.0.0.1:8000/metrics")},
		},
		{
			name: "custom port and path",
			pods: []*corev1.Pod{testPod("ml", "web", scrapeOn(names.AnnotationScrapePort, "9090", names.AnnotationScrapePath, "/v1/metrics"))},
			want: []scrape.Target{podTarget("ml", "web", "node-a", "http://10.0.0.1:9090/v1/metrics")},
		},
		{
			name: "port with spaces, path with a query",
			pods: []*corev1.Pod{testPod("ml", "web", scrapeOn(names.AnnotationScrapePort, " 65535 ", names.AnnotationScrapePath, "/metrics?format=prometheus"))},
			want: []scrape.Target{podTarget("ml", "web", "node-a", "http://10.0.0.1:65535/metrics?format=prometheus")},
		},
		{
			name: "bad ports",
			pods: []*corev1.Pod{
				testPod("ml", "abc", scrapeOn(names.AnnotationScrapePort, "abc")),
				testPod("ml", "zero", scrapeOn(names.AnnotationScrapePort, "0")),
				testPod("ml", "big", scrapeOn(names.AnnotationScrapePort, "70000")),
				testPod("ml", "negative", scrapeOn(names.AnnotationScrapePort, "-1")),
				testPod("ml", "empty", scrapeOn(names.AnnotationScrapePort, "")),
				testPod("ml", "good", scrapeOn()),
			},
			want: []scrape.Target{podTarget("ml", "good", "node-a", "http://10.0.0.1:8000/metrics")},
			wantErrs: map[string]string{
				"ml/abc": names.AnnotationScrapePort, "ml/zero": names.AnnotationScrapePort, "ml/big": names.AnnotationScrapePort,
				"ml/negative": names.AnnotationScrapePort, "ml/empty": names.AnnotationScrapePort,
			},
		},
		{
			name: "bad paths",
			pods: []*corev1.Pod{
				testPod("ml", "relative", scrapeOn(names.AnnotationScrapePath, "metrics")),
				testPod("ml", "space", scrapeOn(names.AnnotationScrapePath, "/a b")),
				testPod("ml", "fragment", scrapeOn(names.AnnotationScrapePath, "/metrics#x")),
				testPod("ml", "newline", scrapeOn(names.AnnotationScrapePath, "/metrics\n")),
				testPod("ml", "empty", scrapeOn(names.AnnotationScrapePath, "")),
				testPod("ml", "escape", scrapeOn(names.AnnotationScrapePath, "/metrics%")),
				testPod("ml", "control", scrapeOn(names.AnnotationScrapePath, "/metrics\x00")),
			},
			wantErrs: map[string]string{
				"ml/relative": names.AnnotationScrapePath, "ml/space": names.AnnotationScrapePath, "ml/fragment": names.AnnotationScrapePath,
				"ml/newline": names.AnnotationScrapePath, "ml/empty": names.AnnotationScrapePath, "ml/escape": names.AnnotationScrapePath,
				"ml/control": names.AnnotationScrapePath,
			},
		},
		{
			name: "pods that do not run are skipped, bad annotations or not",
			pods: []*corev1.Pod{
				testPod("ml", "pending", scrapeOn(), phase(corev1.PodPending)),
				testPod("ml", "succeeded", scrapeOn(), phase(corev1.PodSucceeded)),
				testPod("ml", "failed", scrapeOn(names.AnnotationScrapePort, "abc"), phase(corev1.PodFailed)),
				testPod("ml", "no-ip", scrapeOn(names.AnnotationScrapePort, "abc"), onNode("node-a", "")),
				testPod("ml", "unscheduled", scrapeOn(), onNode("", "10.0.0.1")),
				testPod("ml", "deleting", scrapeOn(names.AnnotationScrapePath, "bad"), deleting),
				testPod("kube-system", "agent-deleting", agent, deleting),
				testPod("kube-system", "agent-no-ip", agent, onNode("node-a", "")),
			},
		},
		{
			name:     "bad pod IP",
			pods:     []*corev1.Pod{testPod("ml", "web", scrapeOn(), onNode("node-a", "10.0.0.300"))},
			wantErrs: map[string]string{"ml/web": "pod IP"},
		},
		{
			name: "IPv6 pod IPs are bracketed",
			pods: []*corev1.Pod{
				testPod("ml", "loop", scrapeOn(), onNode("node-a", "::1")),
				testPod("ml", "ula", scrapeOn(names.AnnotationScrapePort, "9000"), onNode("node-a", "fd00:10::5")),
				testPod("kube-system", "agent-b", agent, onNode("node-b", "fd00:20::7")),
			},
			want: []scrape.Target{
				agentTarget("node-b", "http://[fd00:20::7]:9400/metrics"),
				podTarget("ml", "loop", "node-a", "http://[::1]:8000/metrics"),
				podTarget("ml", "ula", "node-a", "http://[fd00:10::5]:9000/metrics"),
			},
		},
		{
			name: "agents: one per node, port 9400, no scrape annotation needed",
			pods: []*corev1.Pod{
				testPod("kube-system", "agent-aaaa", agent, onNode("node-a", "10.0.0.2")),
				testPod("kube-system", "agent-zzzz", agent, onNode("node-a", "10.0.0.3")),
				testPod("kube-system", "agent-bbbb", agent, onNode("node-b", "10.0.1.2"), scrapeOn()),
				testPod("kube-system", "agent-cccc", agent, onNode("node-c", "10.0.2.2"), annotated(names.AnnotationScrapePort, "9500", names.AnnotationScrapePath, "/gpu")),
				testPod("kube-system", "agent-dddd", agent, onNode("node-d", "10.0.3.2"), phase(corev1.PodPending)),
				testPod("kube-system", "agent-eeee", agent, onNode("node-d", "10.0.3.3")),
				testPod("ml", "web", scrapeOn(), onNode("node-a", "10.0.0.9")),
			},
			want: []scrape.Target{
				agentTarget("node-a", "http://10.0.0.3:9400/metrics"),
				agentTarget("node-b", "http://10.0.1.2:9400/metrics"),
				agentTarget("node-c", "http://10.0.2.2:9500/gpu"),
				agentTarget("node-d", "http://10.0.3.3:9400/metrics"),
				podTarget("ml", "web", "node-a", "http://10.0.0.9:8000/metrics"),
			},
		},
		{
			name:     "agent with a bad port",
			pods:     []*corev1.Pod{testPod("kube-system", "agent-a", agent, annotated(names.AnnotationScrapePort, "70000"))},
			wantErrs: map[string]string{"kube-system/agent-a": names.AnnotationScrapePort},
		},
		{
			name:     "no agent selector: agent pods are ordinary pods",
			noAgents: true,
			pods: []*corev1.Pod{
				testPod("kube-system", "agent-a", agent),
				testPod("kube-system", "agent-b", agent, scrapeOn(), onNode("node-b", "10.0.1.2")),
			},
			want: []scrape.Target{podTarget("kube-system", "agent-b", "node-b", "http://10.0.1.2:8000/metrics")},
		},
		{
			name:     "empty agent selector selects no agents",
			selector: labels.Everything(),
			pods:     []*corev1.Pod{testPod("kube-system", "agent-a", agent)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sel := tc.selector
			if sel == nil && !tc.noAgents {
				sel = agentSelector
			}
			got, errs := Targets(tc.pods, sel)
			if diff := cmp.Diff(tc.want, sortTargets(got), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("targets (-want +got):\n%s", diff)
			}
			gotErrs := map[string]string{}
			for key, err := range errs {
				gotErrs[key] = err.Error()
				if want, ok := tc.wantErrs[key]; ok && !strings.Contains(err.Error(), want) {
					t.Errorf("error of %s = %q, want it to name %s", key, err, want)
				}
			}
			wantKeys, gotKeys := sortedKeys(tc.wantErrs), sortedKeys(gotErrs)
			if diff := cmp.Diff(wantKeys, gotKeys, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("pods with errors (-want +got):\n%s\nerrors: %v", diff, gotErrs)
			}
		})
	}
}

func sortedKeys(m map[string]string) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
