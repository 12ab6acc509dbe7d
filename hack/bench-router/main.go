// Command bench-router measures the model router on loopback with real
// inference servers: three replicas of property-value, one of them slowed
// by a 20 ms batch delay, under the same open-loop load through a router
// balancing by least cost (power of two choices on outstanding requests
// plus the scraped inference_queue_depth, times each pod's response time)
// and through one going round robin; first with the slowed pod idle
// between the routers' requests, then with a standing queue of its own
// clients (another router replica or a batch job sharing its GPU). It also
// measures the router's own latency: p50 through a router to one pod
// against calling that pod directly. Repetitions alternate the
// configurations; results are medians. `make bench-router` runs it; its
// last line, for the first scenario, is:
//
//	router rps=R p99_ms=A roundrobin_p99_ms=B added_p50_ms=C
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gpufleet/gpufleet/internal/loadgen"
	"github.com/gpufleet/gpufleet/internal/testutil"
)

type options struct {
	server, router string
	duration       time.Duration
	reps           int
	rate           float64
	slowDelay      time.Duration
	standing       int
}

func main() {
	var o options
	flag.StringVar(&o.server, "server", "bin/inference-server", "inference-server binary")
	flag.StringVar(&o.router, "router", "bin/model-router", "model-router binary")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "measurement per configuration and repetition")
	flag.IntVar(&o.reps, "reps", 5, "repetitions (medians are reported)")
	flag.Float64Var(&o.rate, "rate", 300, "offered load, requests per second (open loop)")
	flag.DurationVar(&o.slowDelay, "slow-batch-delay", 20*time.Millisecond, "maxQueueDelay of the slowed replica (the others: 2ms)")
	flag.IntVar(&o.standing, "standing-clients", 4, "closed-loop clients keeping a queue at the slowed replica without the router, in the second scenario (0: no second scenario)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench-router:", err)
		os.Exit(1)
	}
}

const body = `{"inputs":[{"name":"features","datatype":"FP32","shape":[1,8],"data":[120,3,2,15,4.5,400,1,4]}]}`

func run(o options) error {
	dir, err := os.MkdirTemp("", "bench-router-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	fast, slow := filepath.Join(dir, "fast"), filepath.Join(dir, "slow")
	for _, repo := range []struct {
		dir   string
		delay time.Duration
	}{{fast, 2 * time.Millisecond}, {slow, o.slowDelay}} {
		if err := writeRepo(repo.dir, repo.delay); err != nil {
			return err
		}
	}
	var procs []*proc
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	start := func(bin string, args ...string) (*proc, error) {
		p, err := startProc(bin, args...)
		if p != nil {
			procs = append(procs, p)
		}
		return p, err
	}
	var pods []*proc
	for _, repo := range []string{fast, fast, slow} {
		p, err := start(o.server, "--model-repository", repo, "--device", "cpu", "--shutdown-delay=0", "--drift-window-rows=0")
		if err != nil {
			return err
		}
		pods = append(pods, p)
	}
	podAddrs := []string{pods[0].addr, pods[1].addr, pods[2].addr}
	routers := map[string]*proc{}
	for name, r := range map[string]struct {
		policy string
		addrs  []string
	}{
		"least-request": {"least-request", podAddrs},
		"round-robin":   {"round-robin", podAddrs},
		"one-pod":       {"least-request", podAddrs[:1]},
	} {
		rules := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(rules, []byte(rulesFor(r.addrs)), 0o644); err != nil {
			return err
		}
		p, err := start(o.router, "--rules", rules, "--policy", r.policy, "--rules-reload-interval=0", "--shutdown-delay=0")
		if err != nil {
			return err
		}
		routers[name] = p
	}
	infer := func(p *proc) string { return p.url() + "/v2/models/property-value/versions/1/infer" }

	for _, p := range append(pods, routers["least-request"], routers["round-robin"], routers["one-pod"]) {
		loadgen.Warm(infer(p), body)
	}
	// Two scenarios: the slowed pod idle between the routers' requests
	// (only its batch delay makes it slow), then with a standing queue of
	// its own clients (what the scraped inference_queue_depth shows).
	type scenario struct {
		name   string
		lr, rr []loadgen.Result
	}
	scenarios := []*scenario{{name: fmt.Sprintf("slowed by a %s batch delay", o.slowDelay)}}
	if o.standing > 0 {
		scenarios = append(scenarios, &scenario{name: fmt.Sprintf("slowed by a %s batch delay, with %d closed-loop clients of its own", o.slowDelay, o.standing)})
	}
	fmt.Printf("3 inference servers (property-value), 2 with a 2ms batch delay; open loop %.0f req/s, %d x %s per configuration, alternating\n", o.rate, o.reps, o.duration)
	for i, sc := range scenarios {
		ctx, cancel := context.WithCancel(context.Background())
		var standing sync.WaitGroup
		if i == 1 {
			standing.Go(func() { standingLoad(ctx, infer(pods[2]), o.standing) })
		}
		fmt.Printf("%s:\n", sc.name)
		for r := range o.reps {
			sc.lr = append(sc.lr, loadgen.OpenLoop(infer(routers["least-request"]), body, o.rate, o.duration))
			sc.rr = append(sc.rr, loadgen.OpenLoop(infer(routers["round-robin"]), body, o.rate, o.duration))
			fmt.Printf("rep %d  least-request %s\n       round-robin   %s\n", r+1, sc.lr[r], sc.rr[r])
		}
		cancel()
		standing.Wait()
	}

	// The router's own latency: one pod, direct and through the router, at
	// a rate one pod serves without queueing.
	var direct, routed []loadgen.Result
	for i := range o.reps {
		direct = append(direct, loadgen.OpenLoop(infer(pods[0]), body, o.rate/3, o.duration/2))
		routed = append(routed, loadgen.OpenLoop(infer(routers["one-pod"]), body, o.rate/3, o.duration/2))
		fmt.Printf("rep %d  pod direct    %s\n       via router    %s\n", i+1, direct[i], routed[i])
	}
	med := func(rs []loadgen.Result, f func(loadgen.Result) float64) float64 {
		var v []float64
		for _, r := range rs {
			v = append(v, f(r))
		}
		return testutil.Median(v)
	}
	p99 := func(r loadgen.Result) float64 { return r.P99ms }
	p50 := func(r loadgen.Result) float64 { return r.P50ms }
	rps := func(r loadgen.Result) float64 { return r.RPS }
	errs := 0.0
	for _, sc := range scenarios {
		for _, r := range [][]loadgen.Result{sc.lr, sc.rr} {
			errs += med(r, func(r loadgen.Result) float64 { return float64(r.Errors) })
		}
		fmt.Printf("medians, %s: least-request p99 %.2f ms, round-robin p99 %.2f ms\n", sc.name, med(sc.lr, p99), med(sc.rr, p99))
	}
	for _, r := range [][]loadgen.Result{direct, routed} {
		errs += med(r, func(r loadgen.Result) float64 { return float64(r.Errors) })
	}
	fmt.Printf("medians, one pod: p50 direct %.3f ms, via router %.3f ms\n", med(direct, p50), med(routed, p50))
	first := scenarios[0]
	fmt.Printf("router rps=%.0f p99_ms=%.2f roundrobin_p99_ms=%.2f added_p50_ms=%.3f\n",
		med(first.lr, rps), med(first.lr, p99), med(first.rr, p99), med(routed, p50)-med(direct, p50))
	if errs > 0 {
		return fmt.Errorf("requests failed (median errors per run summed: %.0f)", errs)
	}
	return nil
}

// standingLoad keeps n requests at url at all times until ctx ends.
func standingLoad(ctx context.Context, url string, n int) {
	c := loadgen.NewClient(n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for ctx.Err() == nil {
				_ = loadgen.Send(c, url, body)
			}
		})
	}
	wg.Wait()
}

func rulesFor(addrs []string) string {
	return fmt.Sprintf(`apiVersion: router.gpufleet.io/v1alpha1
kind: RoutingRules
backends:
- name: property-value
  endpoints: ["%s"]
routes:
- name: property-value
  match: {model: property-value}
  backends: [{backend: property-value}]
`, strings.Join(addrs, `", "`))
}

// writeRepo copies the shipped property-value model with its batch delay
// set to delay.
func writeRepo(dir string, delay time.Duration) error {
	from := filepath.Join("models", "property-value")
	to := filepath.Join(dir, "property-value")
	return filepath.WalkDir(from, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if rel == "config.yaml" {
			var out []string
			for _, line := range strings.Split(string(data), "\n") {
				if strings.HasPrefix(line, "maxQueueDelay:") {
					line = "maxQueueDelay: " + delay.String()
				}
				out = append(out, line)
			}
			data = []byte(strings.Join(out, "\n"))
		}
		return os.WriteFile(filepath.Join(to, rel), data, 0o644)
	})
}

type proc struct {
	addr string
	cmd  *exec.Cmd
}

func (p *proc) url() string { return "http://" + p.addr }
func (p *proc) stop()       { _ = p.cmd.Process.Kill(); _ = p.cmd.Wait() }

// startProc starts a server binary on a free loopback port and waits for
// its readiness endpoint.
func startProc(bin string, args ...string) (*proc, error) {
	addr, err := testutil.FreeAddr()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, append(args, "--listen", addr)...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{addr: addr, cmd: cmd}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(p.url() + "/v2/health/ready"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		time.Sleep(50 * time.Millisecond) // polling readiness with a deadline
	}
	return p, fmt.Errorf("%s %v: not ready within 60s", bin, args)
}
