// Command bench-inference measures the inference server on the CPU backend
// under saturating load on loopback: dynamic batching against batch size
// 1, and the server's protocol overhead against a bare net/http handler,
// all in one run. `make bench-inference` runs it; its last line is:
//
//	inference batched_rps=X unbatched_rps=Y batching_gain=X/Y batched_p99_ms=P overhead_ratio=R drift_ratio=D
//
// (for the large model; the shipped model's figures are printed above it;
// drift_ratio is the shipped model's throughput with drift statistics on
// over off, same run).
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gpufleet/gpufleet/internal/loadgen"
	"github.com/gpufleet/gpufleet/internal/testutil"
)

func main() {
	server := flag.String("server", "bin/inference-server", "inference-server binary")
	duration := flag.Duration("duration", 10*time.Second, "measurement per configuration")
	concurrency := flag.Int("concurrency", 64, "closed-loop clients")
	hidden := flag.Int("hidden", 2048, "hidden width of the large model: 3 hidden layers of 2048 hold 34 MB of weights, beyond this machine's 2 MiB L2 and 32 MiB L3")
	bare := flag.String("bare", "", "internal: serve a fixed body on this address")
	flag.Parse()
	if *bare != "" {
		serveBare(*bare)
		return
	}
	if err := run(*server, *duration, *concurrency, *hidden); err != nil {
		fmt.Fprintln(os.Stderr, "bench-inference:", err)
		os.Exit(1)
	}
}

// fixedBody is what an inference response of one row looks like.
const fixedBody = `{"model_name":"empty","model_version":"1","outputs":[{"name":"y","datatype":"FP32","shape":[1,1],"data":[0.5]}]}`

func serveBare(addr string) {
	body := []byte(fixedBody)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body)
	})
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(serverBin string, d time.Duration, conc, hidden int) error {
	dir, err := os.MkdirTemp("", "bench-inference-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()

	// The large model, made by the same script as the shipped one.
	fmt.Printf("training the large model (hidden width %d) ...\n", hidden)
	train := exec.Command("go", "run", "./hack/train-model", "--out", filepath.Join(dir, "batched", "large"), "--version", "1",
		"--hidden", strconv.Itoa(hidden), "--hidden-layers", "3", "--epochs", "1", "--samples", "256", "--readme=false")
	train.Stdout, train.Stderr = os.Stdout, os.Stderr
	if err := train.Run(); err != nil {
		return fmt.Errorf("training the large model: %w", err)
	}
	if err := copyModel("models/property-value", filepath.Join(dir, "batched", "property-value")); err != nil {
		return err
	}
	if err := writeEmptyModel(filepath.Join(dir, "batched", "empty")); err != nil {
		return err
	}
	// The unbatched repository: the same models with maxBatchSize 1.
	if err := copyTree(filepath.Join(dir, "batched"), filepath.Join(dir, "unbatched"), func(path string, data []byte) []byte {
		if filepath.Base(path) != "config.yaml" {
			return data
		}
		return []byte(setBatch(string(data), 1))
	}); err != nil {
		return err
	}
	// The batched repository: batches of up to 64 rows, waiting at most 2 ms.
	for _, m := range []string{"large", "property-value", "empty"} {
		p := filepath.Join(dir, "batched", m, "config.yaml")
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(setBatch(string(data), 64)), 0o644); err != nil {
			return err
		}
	}

	batched, err := startServer(serverBin, filepath.Join(dir, "batched"))
	if err != nil {
		return err
	}
	defer batched.stop()
	unbatched, err := startServer(serverBin, filepath.Join(dir, "unbatched"))
	if err != nil {
		return err
	}
	defer unbatched.stop()
	// The same repository without drift statistics (--drift-window-rows=0).
	noDrift, err := startServer(serverBin, filepath.Join(dir, "batched"), "--drift-window-rows=0")
	if err != nil {
		return err
	}
	defer noDrift.stop()
	bareAddr, bareStop, err := startBare()
	if err != nil {
		return err
	}
	defer bareStop()

	row8 := `[120,3,2,15,4.5,400,1,4]`
	body := func(model string) string {
		return `{"inputs":[{"name":"features","datatype":"FP32","shape":[1,8],"data":` + row8 + `}]}`
	}
	type result struct{ batched, unbatched loadgen.Result }
	results := map[string]result{}
	for _, m := range []string{"property-value", "large"} {
		var r result
		for _, run := range []struct {
			name string
			srv  *server
			out  *loadgen.Result
		}{{"batched", batched, &r.batched}, {"unbatched", unbatched, &r.unbatched}} {
			url := run.srv.url + "/v2/models/" + m + "/versions/1/infer"
			loadgen.Warm(url, body(m))
			*run.out = loadgen.ClosedLoop(url, body(m), conc, d)
			fmt.Printf("%-15s %-9s closed loop c=%d: %s\n", m, run.name, conc, run.out)
		}
		// Open loop at half the batched closed-loop rate: latency at a load the server sustains.
		rate := 0.5 * r.batched.RPS
		open := loadgen.OpenLoop(batched.url+"/v2/models/"+m+"/versions/1/infer", body(m), rate, d)
		fmt.Printf("%-15s batched   open loop %.0f req/s: %s\n", m, rate, open)
		results[m] = r
	}
	loadgen.Warm(batched.url+"/v2/models/empty/versions/1/infer", body("empty"))
	empty := loadgen.ClosedLoop(batched.url+"/v2/models/empty/versions/1/infer", body("empty"), conc, d)
	loadgen.Warm("http://"+bareAddr, body("empty"))
	bareLoad := loadgen.ClosedLoop("http://"+bareAddr, body("empty"), conc, d)
	fmt.Printf("empty model (8 -> 1) through the server: %s\n", empty)
	fmt.Printf("bare net/http handler, fixed body:       %s\n", bareLoad)

	// Drift statistics on and off, on the shipped model (the cheapest
	// forward pass, where counting rows weighs most), alternating, medians.
	var on, off []float64
	onURL := batched.url + "/v2/models/property-value/versions/1/infer"
	offURL := noDrift.url + "/v2/models/property-value/versions/1/infer"
	loadgen.Warm(offURL, body("property-value"))
	for range 3 {
		off = append(off, loadgen.ClosedLoop(offURL, body("property-value"), conc, d/2).RPS)
		on = append(on, loadgen.ClosedLoop(onURL, body("property-value"), conc, d/2).RPS)
	}
	driftRatio := testutil.Median(on) / testutil.Median(off)
	fmt.Printf("property-value  drift statistics on / off, closed loop c=%d, 3 x %s each: %.0f / %.0f req/s (medians)\n", conc, d/2, testutil.Median(on), testutil.Median(off))

	l := results["large"]
	fmt.Printf("inference batched_rps=%.0f unbatched_rps=%.0f batching_gain=%.2f batched_p99_ms=%.2f overhead_ratio=%.2f drift_ratio=%.2f\n",
		l.batched.RPS, l.unbatched.RPS, l.batched.RPS/l.unbatched.RPS, l.batched.P99ms, empty.RPS/bareLoad.RPS, driftRatio)
	if l.batched.Errors+l.unbatched.Errors+empty.Errors > 0 {
		return fmt.Errorf("requests failed: %d batched, %d unbatched, %d empty", l.batched.Errors, l.unbatched.Errors, empty.Errors)
	}
	return nil
}

func setBatch(cfg string, n int) string {
	var out []string
	for _, line := range strings.Split(cfg, "\n") {
		if strings.HasPrefix(line, "maxBatchSize:") || strings.HasPrefix(line, "canary:") || strings.HasPrefix(line, "maxQueueSize:") {
			continue
		}
		out = append(out, line)
	}
	return strings.Replace(strings.Join(out, "\n"), "platform: gpufleet-mlp\n", fmt.Sprintf("platform: gpufleet-mlp\nmaxBatchSize: %d\nmaxQueueSize: 4096\n", n), 1)
}

type server struct {
	url string
	cmd *exec.Cmd
}

func (s *server) stop() { _ = s.cmd.Process.Kill(); _ = s.cmd.Wait() }

func startServer(bin, repo string, flags ...string) (*server, error) {
	addr, err := testutil.FreeAddr()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, append([]string{"--model-repository", repo, "--listen", addr, "--device", "cpu", "--shutdown-delay=0"}, flags...)...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{url: "http://" + addr, cmd: cmd}
	if err := waitReady(s.url + "/v2/health/ready"); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func startBare() (string, func(), error) {
	addr, err := testutil.FreeAddr()
	if err != nil {
		return "", nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(self, "--bare", addr)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", addr); err == nil {
			_ = c.Close()
			return addr, stop, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	return "", nil, fmt.Errorf("bare server did not start")
}

func waitReady(url string) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready", url)
}
