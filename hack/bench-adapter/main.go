// Command bench-adapter measures the metrics adapter on a real control
// plane, reading values the way the HPA does: through kube-apiserver's
// aggregation layer (custom.metrics.k8s.io).
//
// Freshness: a few pods run minimal real HTTP exporters on their own
// loopback addresses; a load generator sends real requests to them and
// steps the total rate between a low and a high level. For each step, the
// time from the step until the sum of the pods' requests_per_second has
// covered 90 % of the step. The embedded source (the adapter's default:
// 1 s scrapes, 2 s rate window) and the Prometheus source (a real
// Prometheus scraping every 15 s, rate over 1m, the usual setup) are
// measured in the same run on the same pods, one after the other.
//
// Scale: 10,000 pods whose metrics the embedded adapter scrapes every
// second; GetMetricBySelector over 1,000 of them (what an HPA of a
// 1,000-replica Deployment asks) through the apiserver: p99 latency; and
// the adapter's resident memory.
//
// The last line is:
//
//	adapter freshness_p50_s=X freshness_p95_s=Y prometheus_freshness_p50_s=Z selector1000_p99_ms=L rss_mib=M pods=N
package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	cmclient "k8s.io/metrics/pkg/client/custom_metrics"

	"github.com/gpufleet/gpufleet/internal/adaptertest"
	"github.com/gpufleet/gpufleet/internal/noderunner"
	"github.com/gpufleet/gpufleet/pkg/localcluster"
	"github.com/gpufleet/gpufleet/pkg/names"
)

const (
	namespace = "bench"
	node      = "bench-node-0"
	freshPort = 8000
	scalePort = 8001
)

type options struct {
	adapter              string
	steps, promSteps     int
	freshPods, scalePods int
	low, high            float64
	promScrape, promRate time.Duration
	queries              int
}

func main() {
	var o options
	flag.StringVar(&o.adapter, "adapter", "bin/metrics-adapter", "metrics-adapter binary")
	flag.IntVar(&o.steps, "steps", 10, "load steps measured with the embedded source")
	flag.IntVar(&o.promSteps, "prometheus-steps", 10, "load steps measured with the Prometheus source (each takes over a minute)")
	flag.IntVar(&o.freshPods, "fresh-pods", 4, "pods serving the stepped load")
	flag.IntVar(&o.scalePods, "pods", 10000, "pods in the scale phase")
	flag.Float64Var(&o.low, "low", 10, "low total request rate (requests/s)")
	flag.Float64Var(&o.high, "high", 100, "high total request rate (requests/s)")
	flag.DurationVar(&o.promScrape, "prometheus-scrape", 15*time.Second, "Prometheus scrape interval")
	flag.DurationVar(&o.promRate, "prometheus-rate", time.Minute, "range of rate() for the Prometheus source")
	flag.IntVar(&o.queries, "queries", 200, "GetMetricBySelector queries over 1000 pods")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench-adapter:", err)
		os.Exit(1)
	}
}

type bench struct {
	o      options
	c      *localcluster.Cluster
	client kubernetes.Interface
	cm     cmclient.CustomMetricsClient
	dir    string
}

func run(ctx context.Context, o options) error {
	raiseFileLimit()
	dir, err := os.MkdirTemp("", "bench-adapter-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	c, err := localcluster.Start(ctx, localcluster.Options{})
	if err != nil {
		return err
	}
	defer c.Stop()
	cfg := *c.Config
	cfg.QPS, cfg.Burst = 5000, 10000 // creating 10,000 pods and their status
	client, err := kubernetes.NewForConfig(&cfg)
	if err != nil {
		return err
	}
	cm, _, err := adaptertest.MetricsClients(c.Config)
	if err != nil {
		return err
	}
	b := &bench{o: o, c: c, client: client, cm: cm, dir: dir}

	if _, err := localcluster.CreateGPUNode(ctx, client, localcluster.GPUNode{Name: node}); err != nil {
		return err
	}
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	shared, err := newSharedExporter(scalePort)
	if err != nil {
		return err
	}
	defer shared.Close()
	runner := noderunner.New(client, []string{node}, router{fresh: noderunner.Exporter{Port: freshPort}, scale: shared},
		noderunner.WithBinding(corev1.DefaultSchedulerName, node))
	rctx, rcancel := context.WithCancel(ctx)
	defer rcancel()
	go func() { _ = runner.Run(rctx) }()

	fresh, err := b.freshness(ctx)
	if err != nil {
		return err
	}
	sel, rss, err := b.scale(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("adapter freshness_p50_s=%.2f freshness_p95_s=%.2f prometheus_freshness_p50_s=%.2f selector1000_p99_ms=%.1f rss_mib=%.0f pods=%d\n",
		quantile(fresh.embedded, 0.5), quantile(fresh.embedded, 0.95), quantile(fresh.prometheus, 0.5), sel, rss, o.scalePods)
	return nil
}

// startAdapter runs bin/metrics-adapter on a free port with extra flags and
// registers it as the metrics APIs.
func (b *bench) startAdapter(ctx context.Context, name string, flags ...string) (*localcluster.Process, int, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, 0, err
	}
	_, ps, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(ps)
	args := append(adaptertest.Flags(b.c, port, filepath.Join(b.dir, name)), flags...)
	p, err := localcluster.StartProcess(name, b.o.adapter, args, nil, filepath.Join(b.dir, name+".log"))
	if err != nil {
		return nil, 0, err
	}
	if err := adaptertest.Register(ctx, b.c.Config, port, 90*time.Second); err != nil {
		_ = p.Stop(5 * time.Second)
		return nil, 0, fmt.Errorf("%w\n%s log:\n%s", err, name, p.LogTail(30))
	}
	return p, port, nil
}

// router runs the freshness pods' exporters and the scale pods' shared one.
type router struct {
	fresh, scale noderunner.Workload
}

func (r router) Start(ctx context.Context, pod *corev1.Pod, ip string) (func(), error) {
	if pod.Labels["role"] == "scale" {
		return r.scale.Start(ctx, pod, ip)
	}
	return r.fresh.Start(ctx, pod, ip)
}

func scrapedPod(name string, port int, lbl map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: lbl, Annotations: map[string]string{
			names.AnnotationScrape: "true", names.AnnotationScrapePort: strconv.Itoa(port),
		}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "server", Image: "gpufleet/inference-server"}}},
	}
}

// sumRate is the sum of requests_per_second over the pods matching sel, as
// the custom metrics API reports it, and how many pods had a value.
func (b *bench) sumRate(sel labels.Selector) (float64, int, error) {
	list, err := b.cm.NamespacedMetrics(namespace).GetForObjects(schema.GroupKind{Kind: "Pod"}, sel, "requests_per_second", labels.Everything())
	if err != nil {
		return 0, 0, err
	}
	var sum float64
	for _, v := range list.Items {
		sum += v.Value.AsApproximateFloat64()
	}
	return sum, len(list.Items), nil
}

func waitFor(ctx context.Context, interval, timeout time.Duration, cond func() bool) error {
	return wait.PollUntilContextTimeout(ctx, interval, timeout, true, func(context.Context) (bool, error) { return cond(), nil })
}

func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(i, 0)]
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// rss is a process' resident memory in MiB.
func rss(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kib, err := strconv.ParseFloat(f[1], 64)
			return kib / 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// raiseFileLimit lifts the open-file soft limit to the hard one: 10,000
// exporters' connections need it.
func raiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}
