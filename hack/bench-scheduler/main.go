// Command bench-scheduler measures scheduling throughput on a real control
// plane, scheduler_perf style: N simulated nodes of 8 GPUs, P GPU pods
// (whole GPUs and shares) created first, then one scheduler process started
// with two profiles, gpufleet's (GPUPack, GPUFleet strategy) and the stock
// way to bin-pack (NodeResourcesFit MostAllocated on nvidia.com/gpu); the
// pods of one phase name one profile. Throughput is pods bound per second
// between the first and the last bind. Phases alternate between profiles
// over the repetitions; medians are compared.
//
// The last line is:
//
//	scheduler nodes=N pods=P gpufleet_pods_per_s=X default_pods_per_s=Y ratio=X/Y
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"golang.org/x/sync/errgroup"

	"github.com/gpufleet/gpufleet/internal/schedtest"
	"github.com/gpufleet/gpufleet/internal/testutil"
	"github.com/gpufleet/gpufleet/pkg/localcluster"
	"github.com/gpufleet/gpufleet/pkg/plugins/gpupack"
)

const defaultProfile = "default-binpack"

type options struct {
	nodes, pods, reps int
	runScheduler      string
	timeout           time.Duration
}

func main() {
	var o options
	flag.IntVar(&o.nodes, "nodes", 1000, "simulated nodes of 8 V100 GPUs")
	flag.IntVar(&o.pods, "pods", 10000, "GPU pods per phase")
	flag.IntVar(&o.reps, "reps", 3, "repetitions of both profiles")
	flag.DurationVar(&o.timeout, "phase-timeout", 10*time.Minute, "longest one phase may take")
	flag.StringVar(&o.runScheduler, "run-scheduler", "", "internal: run the scheduler with this config file")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if o.runScheduler != "" {
		err = runScheduler(ctx, o.runScheduler)
	} else {
		err = run(ctx, o)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "bench-scheduler:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	c, err := localcluster.Start(ctx, localcluster.Options{})
	if err != nil {
		return err
	}
	defer c.Stop()
	cfg := *c.Config
	cfg.QPS, cfg.Burst = 5000, 10000
	client := kubernetes.NewForConfigOrDie(&cfg)

	start := time.Now()
	if err := parallel(ctx, o.nodes, func(ctx context.Context, i int) error {
		_, err := localcluster.CreateGPUNode(ctx, client, localcluster.GPUNode{Name: fmt.Sprintf("v100-%04d", i)})
		return err
	}); err != nil {
		return err
	}
	fmt.Printf("created %d nodes (%d GPUs) in %.1f s\n", o.nodes, 8*o.nodes, time.Since(start).Seconds())

	schedCfg, err := schedtest.WriteConfig(c.Dir, c.KubeconfigPath, false,
		schedtest.GPUPackProfile(schedtest.SchedulerName, gpupack.StrategyGPUFleet),
		schedtest.MostAllocatedProfile(defaultProfile))
	if err != nil {
		return err
	}
	rates := map[string][]float64{}
	fmt.Printf("%-4s %-20s %8s %10s %12s\n", "rep", "profile", "pods", "seconds", "pods/s")
	for rep := range o.reps {
		order := []string{schedtest.SchedulerName, defaultProfile}
		if rep%2 == 1 {
			slices.Reverse(order)
		}
		for _, profile := range order {
			secs, err := phase(ctx, o, client, c.Dir, schedCfg, profile, uint64(rep))
			if err != nil {
				return fmt.Errorf("rep %d, profile %s: %w", rep, profile, err)
			}
			rate := float64(o.pods) / secs
			rates[profile] = append(rates[profile], rate)
			fmt.Printf("%-4d %-20s %8d %10.2f %12.1f\n", rep, profile, o.pods, secs, rate)
		}
	}
	ours, theirs := testutil.Median(rates[schedtest.SchedulerName]), testutil.Median(rates[defaultProfile])
	fmt.Printf("scheduler nodes=%d pods=%d gpufleet_pods_per_s=%.1f default_pods_per_s=%.1f ratio=%.2f\n", o.nodes, o.pods, ours, theirs, ours/theirs)
	return nil
}

// runScheduler is the scheduler child process. With $BENCH_CPUPROFILE set
// it writes a CPU profile of its run (per profile name) there.
func runScheduler(ctx context.Context, cfg string) error {
	if dir := os.Getenv("BENCH_CPUPROFILE"); dir != "" {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("scheduler-%d.pprof", os.Getpid())))
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	return schedtest.Run(ctx, cfg)
}

// phase creates the pods for one profile, starts the scheduler, and returns
// the seconds from the first to the last bind. It leaves no pods behind.
func phase(ctx context.Context, o options, client kubernetes.Interface, dir, schedCfg, profile string, seed uint64) (float64, error) {
	ns := "default"
	pods := mix(ns, profile, o.pods, seed)
	if err := parallel(ctx, len(pods), func(ctx context.Context, i int) error {
		_, err := client.CoreV1().Pods(ns).Create(ctx, pods[i], metav1.CreateOptions{})
		return err
	}); err != nil {
		return 0, err
	}
	defer func() {
		zero := int64(0)
		_ = client.CoreV1().Pods(ns).DeleteCollection(context.Background(), metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{})
	}()
	list, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		return 0, err
	}
	w, err := client.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		return 0, err
	}
	defer func() { w.Stop() }()

	// Started like the control plane's children: it dies with this process,
	// and not before (see localcluster.StartProcess).
	sched, err := localcluster.StartProcess("scheduler", os.Args[0], []string{"--run-scheduler", schedCfg}, nil,
		filepath.Join(dir, "scheduler-"+profile+".log"))
	if err != nil {
		return 0, err
	}
	defer func() { _ = sched.Stop(30 * time.Second) }()

	bound := map[string]bool{}
	rv := list.ResourceVersion
	var first, last time.Time
	deadline := time.After(o.timeout)
	for len(bound) < len(pods) {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok { // the API server ends watches now and then: resume
				if w, err = client.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: rv}); err != nil {
					return 0, fmt.Errorf("resuming the pod watch after %d binds: %w", len(bound), err)
				}
				continue
			}
			if ev.Type == watch.Error {
				return 0, fmt.Errorf("pod watch: %v", ev.Object)
			}
			p, isPod := ev.Object.(*corev1.Pod)
			if !isPod {
				continue
			}
			rv = p.ResourceVersion
			if ev.Type != watch.Modified || p.Spec.NodeName == "" || bound[p.Name] {
				continue
			}
			now := time.Now()
			if first.IsZero() {
				first = now
			}
			last = now
			bound[p.Name] = true
		case <-deadline:
			return 0, fmt.Errorf("only %d of %d pods bound after %s; scheduler log, last lines:\n%s", len(bound), len(pods), o.timeout, sched.LogTail(20))
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	return last.Sub(first).Seconds(), nil
}

// mix is the benchmark's pod mix, about 63 % of the GPUs of the cluster when
// pods = 10 x nodes: 60 % shares of 100..500 milli-GPU, 35 % one GPU, 5 %
// two GPUs.
func mix(ns, profile string, n int, seed uint64) []*corev1.Pod {
	rng := rand.New(rand.NewPCG(seed, 42))
	pods := make([]*corev1.Pod, n)
	for i := range pods {
		name := fmt.Sprintf("%s-%05d", profile, i)
		switch x := rng.IntN(100); {
		case x < 60:
			pods[i] = schedtest.GPUPod(ns, name, profile, 0, int64(100*(1+rng.IntN(5))), nil)
		case x < 95:
			pods[i] = schedtest.GPUPod(ns, name, profile, 1, 0, nil)
		default:
			pods[i] = schedtest.GPUPod(ns, name, profile, 2, 0, nil)
		}
	}
	return pods
}

func parallel(ctx context.Context, n int, f func(context.Context, int) error) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(32)
	for i := range n {
		g.Go(func() error { return f(ctx, i) })
	}
	return g.Wait()
}
