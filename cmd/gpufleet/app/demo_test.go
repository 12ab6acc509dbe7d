package app

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/gpufleet/gpufleet/internal/demo"
	"github.com/gpufleet/gpufleet/internal/stack"
	"github.com/gpufleet/gpufleet/pkg/localcluster"
	"github.com/gpufleet/gpufleet/pkg/localcluster/clustertest"
)

func TestDemoOptionsValidateReportsEveryError(t *testing.T) {
	o := newDemoOptions()
	o.Trace, o.traceGiven = filepath.Join(t.TempDir(), "qps.csv"), true
	if err := os.WriteFile(o.Trace, []byte("timestamp_anon,value\n0,1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := o.Validate(); err != nil {
		t.Fatalf("defaults are invalid: %v", err)
	}
	o.bothLengths, o.Speed, o.MaxRPS, o.TargetRPS, o.MaxReplicas, o.Out, o.ProgressEvery = true, -1, 0, 0, 17, "", 0
	o.Trace = filepath.Join(t.TempDir(), "missing.csv")
	err := o.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"--duration and --speed", "--speed=-1", "--max-rps=0", "--target-rps-per-pod=0", "--max-replicas=17", "--out", "--progress-every", "--trace=" + o.Trace} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	o = newDemoOptions()
	o.Duration = time.Second
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "--duration=1s") {
		t.Errorf("1 s replay: %v", err)
	}
}

func TestDemoDefaultTraceIsTheModulesNeighbour(t *testing.T) {
	o := newDemoOptions()
	err := o.resolveTrace()
	root, rerr := localcluster.ModuleRoot()
	if rerr != nil {
		t.Fatal(rerr)
	}
	if want := filepath.Join(filepath.Dir(root), "shared", "traces", "genai-qps", "qps.csv"); o.Trace != want {
		t.Errorf("default trace %s, want %s", o.Trace, want)
	}
	if _, serr := os.Stat(o.Trace); serr != nil {
		if err == nil || !strings.Contains(err.Error(), "get it from https://github.com/alibaba/clusterdata") || !strings.Contains(err.Error(), "--trace FILE") {
			t.Errorf("missing default trace: error %v does not say where to get it or how to give another", err)
		}
	} else if err != nil {
		t.Errorf("the default trace is there, yet: %v", err)
	}
}

// TestIntegrationDemoShort runs `gpufleet demo --node=simulated` for a 20 s
// replay of a small trace (about 35 s in all) and checks its outputs, and
// that no process it started outlives it.
func TestIntegrationDemoShort(t *testing.T) {
	if testing.Short() {
		t.Skip("integration: runs the whole system for about 35 s; run without -short")
	}
	runDemo(t, demo.NodeSimulated, 9) // etcd, kube-apiserver, kube-controller-manager, scheduler, adapter, 3 agents, a server
}

// TestIntegrationDemoRealNode runs the same demo with --node=real: the
// model's pods on the real node, gpufleet from manifests/overlays/local.
func TestIntegrationDemoRealNode(t *testing.T) {
	if testing.Short() {
		t.Skip("integration: runs the whole system on a real node for about a minute; run without -short")
	}
	if err := stack.RealNodeUnavailable(); err != nil {
		clustertest.RealNodeUnavailable(t, err)
	}
	stdout := runDemo(t, demo.NodeReal, 7) // etcd, kube-apiserver, kube-controller-manager, kube-scheduler, containerd, kubelet, kube-proxy
	if !strings.Contains(stdout, "node: real") {
		t.Errorf("the demo does not say it ran on the real node")
	}
	// Checked while no real node runs: a test in another package may start
	// one as soon as the demo's stopped.
	release, err := localcluster.LockRealNodes()
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if left := localcluster.RealNodeLeftovers(""); len(left) > 0 {
		t.Errorf("the real node left: %v", left)
	}
}

// runDemo runs the demo on node with a small trace, checks its outputs and
// that no process it started outlives it (at least minChildren seen), and
// returns what it printed.
func runDemo(t *testing.T, node string, minChildren int) string {
	dir, out := t.TempDir(), filepath.Join(t.TempDir(), "demo")
	trace := filepath.Join(dir, "qps.csv")
	var csv strings.Builder
	csv.WriteString("timestamp_anon,value,container_ip,request_type\n")
	for i, v := range []float64{1, 2, 4, 8, 8, 6, 3, 1, 0.5, 0.2} { // a day's shape, in 10 windows of 60 s
		fmt.Fprintf(&csv, "%d,%g,a,Generative Requests\n%d,%g,b,Generative Requests\n", 1000+60*i, v/2, 1000+60*i, v/2)
	}
	if err := os.WriteFile(trace, []byte(csv.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	// Children of this test process, gathered while the demo runs.
	ctx, cancel := context.WithCancel(context.Background())
	seen := map[int]bool{}
	var mu sync.Mutex
	var watch sync.WaitGroup
	watch.Go(func() {
		_ = wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(context.Context) (bool, error) {
			mu.Lock()
			defer mu.Unlock()
			for _, pid := range childPIDs(t) {
				seen[pid] = true
			}
			return false, nil
		})
	})

	began := time.Now()
	var stdout bytes.Buffer
	cmd := NewCommand()
	cmd.SetArgs([]string{"demo", "--node", node, "--trace", trace, "--duration", "20s", "--max-rps", "30", "--out", out, "--progress-every", "4s"})
	cmd.SetOut(&stdout)
	err := cmd.ExecuteContext(t.Context())
	cancel()
	watch.Wait()
	t.Logf("demo took %.1f s; its output:\n%s", time.Since(began).Seconds(), stdout.String())
	if err != nil {
		t.Fatal(err)
	}

	if len(seen) < minChildren {
		t.Errorf("saw %d child processes while the demo ran, want at least %d", len(seen), minChildren)
	}
	for pid := range seen {
		if localcluster.Alive(pid) {
			t.Errorf("child process %d outlived the demo", pid)
		}
	}
	if left := childPIDs(t); len(left) > 0 {
		t.Errorf("child processes left: %v", left)
	}
	if dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "gpufleet-cp-*", "owner.pid")); len(dirs) > 0 {
		for _, d := range dirs {
			if data, _ := os.ReadFile(d); strings.TrimSpace(string(data)) == strconv.Itoa(os.Getpid()) {
				t.Errorf("temporary directory %s left behind", filepath.Dir(d))
			}
		}
	}

	for _, name := range []string{demo.FileReport, demo.FileRequestsPlot, demo.FileUtilPlot, demo.FileCostHTML, demo.FileCostText, demo.FileTimeline, demo.FilePrices} {
		if st, err := os.Stat(filepath.Join(out, name)); err != nil || st.Size() == 0 {
			t.Errorf("%s missing or empty: %v", name, err)
		}
	}
	costText, _ := os.ReadFile(filepath.Join(out, demo.FileCostText))
	if !strings.Contains(string(costText), "serving/Deployment/property-value") {
		t.Errorf("the cost report does not list the model Deployment:\n%s", costText)
	}
	report, _ := os.ReadFile(filepath.Join(out, demo.FileReport))
	if !bytes.Contains(report, []byte(`src="data:image/png;base64,`)) || !bytes.Contains(report, []byte("serving/Deployment/property-value")) {
		t.Error("report.html lacks its plots or the cost report")
	}
	timeline, _ := os.ReadFile(filepath.Join(out, demo.FileTimeline))
	if rows := strings.Count(string(timeline), "\n") - 1; rows < 18 {
		t.Errorf("timeline has %d samples, want about 20", rows)
	}
	for _, want := range []string{"model pods (node: GPU indices)", "requests: ", "0 failed", "written:"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	return stdout.String()
}

// childPIDs lists the live processes whose parent is this one.
func childPIDs(t *testing.T) []int {
	t.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		t.Fatal(err)
	}
	me := strconv.Itoa(os.Getpid())
	var out []int
	for _, path := range stats {
		data, err := os.ReadFile(path)
		if err != nil {
			continue // exited meanwhile
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
		s := string(data)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) >= 2 && fields[1] == me && fields[0] != "Z" {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(path)))
			out = append(out, pid)
		}
	}
	slices.Sort(out)
	return out
}
