package embedded

import (
	"net"
	"net/url"
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/gpufleet/gpufleet/pkg/names"
)

// FuzzTargets feeds arbitrary annotation values and pod IPs to Targets and
// checks what every caller relies on: no panic, every target URL is a valid
// http URL whose host is the pod's IP, and every scrapable pod is either a
// target or reported.
func FuzzTargets(f *testing.F) {
	for _, s := range []struct {
		scrape, port, path, ip string
		hasPort, hasPath       bool
	}{
		{scrape: "true", ip: "10.0.0.1"},
		{scrape: "false", ip: "10.0.0.1"},
		{scrape: "true", port: "9090", path: "/v1/metrics", ip: "10.0.0.1", hasPort: true, hasPath: true},
		{scrape: "true", port: "abc", ip: "10.0.0.1", hasPort: true},
		{scrape: "true", port: "0", ip: "10.0.0.1", hasPort: true},
		{scrape: "true", port: "70000", ip: "10.0.0.1", hasPort: true},
		{scrape: "true", port: " +80", ip: "10.0.0.1", hasPort: true},
		{scrape: "true", path: "metrics", ip: "10.0.0.1", hasPath: true},
		{scrape: "true", path: "/a b", ip: "10.0.0.1", hasPath: true},
		{scrape: "true", path: "/%zz", ip: "10.0.0.1", hasPath: true},
		{scrape: "true", path: "//evil.example.com/x", ip: "10.0.0.1", hasPath: true},
		{scrape: "true", path: "/m?x=1", ip: "::1", hasPath: true},
		{scrape: "true", ip: "fe80::1%eth0"},
		{scrape: "true", ip: ""},
		{scrape: "true", ip: "not-an-ip"},
	} {
		f.Add(s.scrape, s.port, s.hasPort, s.path, s.hasPath, s.ip)
	}
	f.Fuzz(func(t *testing.T, scrapeVal, port string, hasPort bool, path string, hasPath bool, ip string) {
		ann := map[string]string{names.AnnotationScrape: scrapeVal}
		if hasPort {
			ann[names.AnnotationScrapePort] = port
		}
		if hasPath {
			ann[names.AnnotationScrapePath] = path
		}
		model := testPod("ml", "model", onNode("node-a", ip))
		model.Annotations = ann
		ag := testPod("kube-system", "agent", agent, onNode("node-b", ip))
		ag.Annotations = ann
		good := testPod("ml", "good", scrapeOn(), onNode("node-c", "10.0.0.9"))
		pods := []*corev1.Pod{model, ag, good}

		targets, errs := Targets(pods, agentSelector)
		byKey := map[string]string{}
		for _, tg := range targets {
			if _, dup := byKey[tg.Key]; dup {
				t.Errorf("two targets with key %s", tg.Key)
			}
			byKey[tg.Key] = tg.URL
			u, err := url.Parse(tg.URL)
			if err != nil {
				t.Errorf("target %s: URL %q does not parse: %v", tg.Key, tg.URL, err)
				continue
			}
			wantHost := ip
			if tg.Key == PodKey("ml", "good") {
				wantHost = "10.0.0.9"
			}
			if u.Scheme != "http" || u.Hostname() != wantHost || u.User != nil {
				t.Errorf("target %s: URL %q: scheme %q host %q, want http://%s", tg.Key, tg.URL, u.Scheme, u.Hostname(), wantHost)
			}
			if p, err := strconv.Atoi(u.Port()); err != nil || p < 1 || p > 65535 {
				t.Errorf("target %s: URL %q: port %q, want 1..65535", tg.Key, tg.URL, u.Port())
			}
			if net.ParseIP(u.Hostname()) == nil {
				t.Errorf("target %s: URL %q: host %q is not an IP address", tg.Key, tg.URL, u.Hostname())
			}
		}
		if _, ok := byKey[PodKey("ml", "good")]; !ok {
			t.Errorf("a well-annotated pod is not a target: targets %v, errs %v", byKey, errs)
		}
		if len(targets)+len(errs) > len(pods) {
			t.Errorf("%d targets and %d errors for %d pods", len(targets), len(errs), len(pods))
		}

		// A running pod with an IP is a target or an error exactly when it is
		// an agent or annotated scrape=true; never both.
		hasIP := ip != ""
		for _, c := range []struct {
			key, errKey string
			want        bool
		}{
			{key: PodKey("ml", "model"), errKey: "ml/model", want: hasIP && scrapeVal == "true"},
			{key: NodeKey("node-b"), errKey: "kube-system/agent", want: hasIP},
		} {
			_, isTarget := byKey[c.key]
			_, isErr := errs[c.errKey]
			if isTarget && isErr {
				t.Errorf("%s is both a target and an error (%v)", c.errKey, errs[c.errKey])
			}
			if got := isTarget || isErr; got != c.want {
				t.Errorf("%s: target %v, error %v; want one of them %v (annotations %q, IP %q)", c.errKey, isTarget, isErr, c.want, ann, ip)
			}
		}
	})
}
