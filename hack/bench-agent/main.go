// Command bench-agent measures the gpu-agent on the simulated 8-GPU node:
// resident memory, CPU, and /metrics latency while it samples every second
// and is scraped ten times a second. `make bench-agent` runs it; its last
// line is the result:
//
//	agent rss_mib=X cpu_pct=Y scrape_p50_ms=A scrape_p99_ms=B gpus=8
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gpufleet/gpufleet/internal/testutil"
	"github.com/gpufleet/gpufleet/pkg/nvml/sim/activity"
)

// clockTicks is the kernel's USER_HZ, the unit of /proc/<pid>/stat times.
const clockTicks = 100

func main() {
	agentBin := flag.String("agent", "bin/gpu-agent", "gpu-agent binary")
	duration := flag.Duration("duration", 60*time.Second, "how long to measure")
	rate := flag.Int("scrape-rate", 10, "scrapes per second")
	flag.Parse()
	if err := run(*agentBin, *duration, *rate); err != nil {
		fmt.Fprintln(os.Stderr, "bench-agent:", err)
		os.Exit(1)
	}
}

func run(agentBin string, duration time.Duration, rate int) error {
	dir, err := os.MkdirTemp("", "bench-agent-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	addr, err := testutil.FreeAddr()
	if err != nil {
		return err
	}
	cmd := exec.Command(agentBin, "--nvml=mock", "--listen", addr, "--node-name", "bench", "--sim-dir", dir,
		"--pod-resources-socket=", "--interval=1s")
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", agentBin, err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	pid := cmd.Process.Pid

	// Real work for the simulated GPUs: this process keeps all 8 about half busy.
	rep, err := activity.NewReporter(dir, []int{0, 1, 2, 3, 4, 5, 6, 7}, &activity.PodIdentity{Namespace: "bench", Name: "load", Container: "main"})
	if err != nil {
		return err
	}
	defer func() { _ = rep.Close() }()
	rep.SetMemory(4 << 30)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				rep.AddBusy(0.05)
				_ = rep.Flush()
			}
		}
	}()

	client := &http.Client{Timeout: 5 * time.Second}
	url := "http://" + addr
	if err := waitReady(client, url+"/readyz", 30*time.Second); err != nil {
		return err
	}
	time.Sleep(3 * time.Second) // warm-up: a few samplings, first scrapes
	gpus, err := countGPUs(client, url+"/metrics")
	if err != nil {
		return err
	}

	cpu0, err := cpuTicks(pid)
	if err != nil {
		return err
	}
	start := time.Now()
	var lat []time.Duration
	maxRSS := 0.0
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	nextRSS := start
	for time.Since(start) < duration {
		<-tick.C
		t0 := time.Now()
		if err := scrape(client, url+"/metrics"); err != nil {
			return err
		}
		lat = append(lat, time.Since(t0))
		if time.Now().After(nextRSS) {
			rss, err := rssMiB(pid)
			if err != nil {
				return err
			}
			maxRSS = max(maxRSS, rss)
			nextRSS = nextRSS.Add(time.Second)
		}
	}
	wall := time.Since(start)
	cpu1, err := cpuTicks(pid)
	if err != nil {
		return err
	}
	cpuPct := float64(cpu1-cpu0) / clockTicks / wall.Seconds() * 100
	slices.Sort(lat)
	p := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
	fmt.Printf("measured %s, %d scrapes, agent pid %d\n", wall.Round(time.Millisecond), len(lat), pid)
	fmt.Printf("agent rss_mib=%.1f cpu_pct=%.2f scrape_p50_ms=%.2f scrape_p99_ms=%.2f gpus=%d\n", maxRSS, cpuPct, p(0.50), p(0.99), gpus)
	return nil
}

func waitReady(c *http.Client, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if resp, err := c.Get(url); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("agent not ready at %s after %s", url, timeout)
}

func scrape(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

func countGPUs(c *http.Client, url string) (int, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "gpufleet_gpu_info{") {
			n++
		}
	}
	return n, nil
}

// cpuTicks is the user plus system time of pid, in clock ticks.
func cpuTicks(pid int) (uint64, error) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	// After "pid (comm) ", field 0 is state; utime and stime are 11 and 12.
	utime, err1 := strconv.ParseUint(fields[11], 10, 64)
	stime, err2 := strconv.ParseUint(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parsing /proc/%d/stat", pid)
	}
	return utime + stime, nil
}

func rssMiB(pid int) (float64, error) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}
