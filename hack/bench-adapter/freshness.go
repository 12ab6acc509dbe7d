package main

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"path/filepath"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/gpufleet/gpufleet/internal/loadgen"
	"github.com/gpufleet/gpufleet/internal/noderunner"
	"github.com/gpufleet/gpufleet/internal/promtest"
)

type freshResult struct {
	embedded, prometheus []float64
}

var freshSel = labels.SelectorFromSet(labels.Set{"role": "fresh"})

// freshness measures both sources on the same pods and load.
func (b *bench) freshness(ctx context.Context) (freshResult, error) {
	var res freshResult
	for i := range b.o.freshPods {
		p := scrapedPod("fresh-"+strconv.Itoa(i), freshPort, map[string]string{"role": "fresh"})
		if _, err := b.client.CoreV1().Pods(namespace).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			return res, err
		}
	}
	pods, err := noderunner.WaitRunning(ctx, b.client, namespace, "role=fresh", b.o.freshPods, 60*time.Second)
	if err != nil {
		return res, err
	}
	var urls []string
	var targets []promtest.Target
	for _, p := range pods {
		addr := net.JoinHostPort(p.Status.PodIP, strconv.Itoa(freshPort))
		urls = append(urls, "http://"+addr+"/v2/models/bert/infer")
		targets = append(targets, promtest.Target{Addr: addr, Labels: map[string]string{"namespace": p.Namespace, "pod": p.Name}})
	}
	load := loadgen.New(5 * time.Second)
	lctx, lcancel := context.WithCancel(ctx)
	defer lcancel()
	go load.Run(lctx)
	load.SetTargets(urls)
	load.SetRate(b.o.low)

	prom, err := promtest.Launch(filepath.Join(b.dir, "prometheus"), promtest.Config{ScrapeInterval: b.o.promScrape, Targets: targets})
	if err != nil {
		return res, err
	}
	defer func() { _ = prom.Stop() }()
	wctx, wcancel := context.WithTimeout(ctx, 2*b.o.promScrape+time.Minute)
	defer wcancel()
	if err := prom.WaitForTargetsUp(wctx, len(targets)); err != nil {
		return res, err
	}

	embedded, _, err := b.startAdapter(ctx, "adapter-embedded")
	if err != nil {
		return res, err
	}
	fmt.Printf("%-12s %4s %8s %8s %10s\n", "source", "step", "from", "to", "seconds")
	if res.embedded, err = b.steps(ctx, "embedded", load, b.o.steps, time.Second, 4*time.Second, 30*time.Second); err != nil {
		return res, fmt.Errorf("%w\nadapter log:\n%s", err, embedded.LogTail(30))
	}
	_ = embedded.Stop(5 * time.Second)

	if b.o.promSteps > 0 {
		promAdapter, _, err := b.startAdapter(ctx, "adapter-prometheus", "--prometheus-url="+prom.URL(),
			"--prometheus-rate-window="+b.o.promRate.String())
		if err != nil {
			return res, err
		}
		defer func() { _ = promAdapter.Stop(5 * time.Second) }()
		hold := b.o.promRate + 2*b.o.promScrape // until rate() covers only the new level
		if res.prometheus, err = b.steps(ctx, "prometheus", load, b.o.promSteps, b.o.promScrape, hold, hold+2*time.Minute); err != nil {
			return res, fmt.Errorf("%w\nadapter log:\n%s", err, promAdapter.LogTail(30))
		}
	}
	if f := load.Failed(); f > 0 {
		return res, fmt.Errorf("%d of %d requests failed, last: %s", f, load.Sent(), load.LastError())
	}
	return res, nil
}

// steps settles the load at the low level, then steps it n times between
// low and high, returning each step's time to 90 %. Each step comes at a
// random phase of the source's scrape interval (after the settled value is
// held), so that the steps sample every position relative to the scrapes.
func (b *bench) steps(ctx context.Context, source string, load *loadgen.Generator, n int, scrape, hold, timeout time.Duration) ([]float64, error) {
	level := b.o.low
	load.SetRate(level)
	if err := b.settle(ctx, level, hold, timeout); err != nil {
		return nil, fmt.Errorf("%s: settling at %v requests/s: %w", source, level, err)
	}
	var out []float64
	for i := range n {
		from, to := level, b.o.high
		if level == b.o.high {
			to = b.o.low
		}
		select { // a random phase, not a wait for a condition
		case <-time.After(rand.N(scrape)):
		case <-ctx.Done():
			return out, ctx.Err()
		}
		load.SetRate(to)
		start := time.Now()
		last := "no answer"
		err := waitFor(ctx, 50*time.Millisecond, timeout, func() bool {
			v, n, err := b.sumRate(freshSel)
			if err != nil {
				last = err.Error()
				return false
			}
			last = fmt.Sprintf("%.1f from %d pods", v, n)
			return math.Abs(v-to) <= 0.1*math.Abs(to-from)
		})
		if err != nil {
			return out, fmt.Errorf("%s step %d (%v -> %v requests/s): no 90%% within %v, last %s", source, i, from, to, timeout, last)
		}
		took := time.Since(start).Seconds()
		out = append(out, took)
		fmt.Printf("%-12s %4d %8.0f %8.0f %10.2f\n", source, i, from, to, took)
		level = to
		if err := b.settle(ctx, level, hold-time.Since(start), timeout); err != nil {
			return out, fmt.Errorf("%s: settling at %v requests/s: %w", source, level, err)
		}
	}
	return out, nil
}

// settle waits at least hold, and until the value is within 5 % of level.
func (b *bench) settle(ctx context.Context, level float64, hold, timeout time.Duration) error {
	deadline := time.Now().Add(max(hold, 0))
	last := "no answer"
	err := waitFor(ctx, 100*time.Millisecond, timeout, func() bool {
		v, n, err := b.sumRate(freshSel)
		if err != nil {
			last = err.Error()
			return false
		}
		last = fmt.Sprintf("%.1f from %d pods", v, n)
		return time.Now().After(deadline) && math.Abs(v-level) <= 0.05*level
	})
	if err != nil {
		return fmt.Errorf("not within 5%% of %v after %v: last %s", level, timeout, last)
	}
	return nil
}
