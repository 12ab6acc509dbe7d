package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/gpufleet/gpufleet/internal/adaptertest"
	"github.com/gpufleet/gpufleet/internal/schedconfig"
	"github.com/gpufleet/gpufleet/internal/stack"
	"github.com/gpufleet/gpufleet/pkg/localcluster"
	"github.com/gpufleet/gpufleet/pkg/localcluster/clustertest"
	"github.com/gpufleet/gpufleet/pkg/names"
)

const systemNS = "gpufleet-system"

// TestIntegrationE2EChaos runs gpufleet on the real node under steady
// inference load with an HPA reading requests_per_second every 100 ms, and
// in turn crashes one metrics-adapter replica, the scheduler leader, the
// gpu-agent (kill -9: the kubelet restarts them), kube-apiserver and etcd
// (killed and restarted by their supervisor). For each it measures the
// longest time the metric could not be read, the time until everything is
// back, and for the scheduler leader how many pods were bound while no
// leader held the lease. Targets: no inference request fails, no GPU is
// given out twice, metric gaps of at most 10 s, recovery within 30 s.
func TestIntegrationE2EChaos(t *testing.T) {
	s, load, background := realStackWithLoad(t)
	ctx := t.Context()
	load.SetRate(lowRPS)
	m := startMetricReader(t, background.ctx, s, &background.wg)
	if err := m.waitFresh(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}

	type result struct {
		fault            string
		gap, recovery    time.Duration
		boundWithoutLead int
	}
	var results []result
	run := func(fault string, crash func() error, recovered func(ctx context.Context) error, extra func() int) {
		t.Helper()
		m.reset()
		start := time.Now()
		if err := crash(); err != nil {
			t.Fatalf("%s: %v", fault, err)
		}
		var last error
		err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
			last = recovered(ctx)
			return last == nil, nil
		})
		if err != nil {
			t.Fatalf("%s: not recovered after 2 min: %v", fault, last)
		}
		// Recovered includes reading the metric again.
		if err := m.waitFresh(ctx, time.Minute); err != nil {
			t.Fatalf("%s: %v", fault, err)
		}
		r := result{fault: fault, gap: m.maxGap(), recovery: time.Since(start)}
		if extra != nil {
			r.boundWithoutLead = extra()
		}
		t.Logf("%s: metric unreadable at most %.1f s, recovered in %.1f s", fault, r.gap.Seconds(), r.recovery.Seconds())
		results = append(results, r)
	}

	client := s.Client
	var k killed
	kill := func(selector, pod string) func() error {
		return func() (err error) {
			k, err = killPodOf(ctx, client, selector, pod)
			return err
		}
	}
	run("metrics-adapter replica", kill("app.kubernetes.io/name=metrics-adapter", ""),
		func(ctx context.Context) error {
			if err := k.restarted(ctx, client); err != nil {
				return err
			}
			if err := clustertest.DeploymentReady(ctx, client, systemNS, "gpufleet-metrics-adapter"); err != nil {
				return err
			}
			return adaptertest.WaitAvailable(ctx, s.Cluster.Config, time.Second)
		}, nil)

	var probe *leaderProbe
	run("scheduler leader", func() error {
		holder, err := leaseHolder(ctx, client)
		if err != nil {
			return err
		}
		if k, err = killPodOf(ctx, client, "app.kubernetes.io/name=scheduler-plugin", holder); err != nil {
			return err
		}
		probe = startLeaderProbe(t, ctx, client, holder)
		return nil
	}, func(ctx context.Context) error {
		if err := probe.done(ctx); err != nil {
			return err
		}
		return k.restarted(ctx, client)
	}, func() int { return probe.boundWithoutLeader() })

	run("gpu-agent", kill("app.kubernetes.io/name=gpu-agent", ""),
		func(ctx context.Context) error {
			if err := k.restarted(ctx, client); err != nil {
				return err
			}
			if err := daemonSetReady(ctx, client); err != nil {
				return err
			}
			return allocatableBack(ctx, client)
		}, nil)

	for _, name := range []string{localcluster.KubeAPIServer, localcluster.Etcd} {
		run(name, func() error {
			down, err := s.Cluster.CrashRestart(ctx, name)
			t.Logf("%s back after %v", name, down.Round(time.Millisecond))
			return err
		}, func(ctx context.Context) error { return adaptertest.WaitAvailable(ctx, s.Cluster.Config, time.Second) }, nil)
	}

	load.SetRate(0)
	failed := load.Failed()
	double := doubleAssigned(t, ctx, client)
	var maxGap, maxRecovery time.Duration
	for _, r := range results {
		maxGap, maxRecovery = max(maxGap, r.gap), max(maxRecovery, r.recovery)
		if r.fault == "scheduler leader" && r.boundWithoutLead > 0 {
			t.Errorf("%d pods were bound while no scheduler held the lease", r.boundWithoutLead)
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d inference requests failed, last: %s", failed, load.Sent(), load.LastError())
	}
	if double > 0 {
		t.Errorf("%d GPUs given out twice", double)
	}
	if maxGap > 10*time.Second {
		t.Errorf("the HPA could not read its metric for %.1f s (target 10 s)", maxGap.Seconds())
	}
	if maxRecovery > 30*time.Second {
		t.Errorf("the slowest recovery took %.1f s (target 30 s)", maxRecovery.Seconds())
	}
	line := fmt.Sprintf("chaos faults=%d failed_requests=%d double_assigned_gpus=%d max_metric_gap_s=%.1f max_recovery_s=%.1f",
		len(results), failed, double, maxGap.Seconds(), maxRecovery.Seconds())
	t.Log(line)
	if dir := os.Getenv("GPUFLEET_CHAOS_SUMMARY"); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, "chaos"), []byte(line+"\n"), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// metricReader reads requests_per_second of the model's pods through
// kube-apiserver every 100 ms, as the HPA does, and keeps the longest run
// of failed reads since reset.
type metricReader struct {
	mu      sync.Mutex
	lastOK  time.Time
	gap     time.Duration
	failing bool
	lastErr string
}

func startMetricReader(t *testing.T, ctx context.Context, s *stack.Stack, background *sync.WaitGroup) *metricReader {
	t.Helper()
	cfg := rest.CopyConfig(s.Cluster.Config)
	cfg.Timeout = 2 * time.Second // a read is a success or a failure within 2 s
	cm, _, err := adaptertest.MetricsClients(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := &metricReader{}
	sel := labels.SelectorFromSet(labels.Set{"app": stack.AppName})
	background.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for ctx.Err() == nil {
			list, err := cm.NamespacedMetrics(stack.Namespace).GetForObjects(schema.GroupKind{Kind: "Pod"}, sel, "requests_per_second", labels.Everything())
			now := time.Now()
			m.mu.Lock()
			if err == nil && len(list.Items) > 0 {
				if m.failing {
					m.gap = max(m.gap, now.Sub(m.lastOK))
				}
				m.failing, m.lastOK = false, now
			} else {
				if !m.failing {
					m.failing = true
				}
				m.gap = max(m.gap, now.Sub(m.lastOK))
				if err != nil {
					m.lastErr = err.Error()
				} else {
					m.lastErr = "no pod has a value"
				}
			}
			m.mu.Unlock()
			select {
			case <-ctx.Done():
			case <-tick.C:
			}
		}
	})
	return m
}

// reset starts a new fault's measurement.
func (m *metricReader) reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gap = 0
}

func (m *metricReader) maxGap() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.gap
}

// waitFresh waits until the last read succeeded.
func (m *metricReader) waitFresh(ctx context.Context, timeout time.Duration) error {
	var last string
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		m.mu.Lock()
		defer m.mu.Unlock()
		last = m.lastErr
		return !m.lastOK.IsZero() && !m.failing && time.Since(m.lastOK) < time.Second, nil
	})
	if err != nil {
		return fmt.Errorf("requests_per_second not readable through kube-apiserver within %v (last: %s)", timeout, last)
	}
	return nil
}

// killed is a container that was SIGKILLed, with its restart count then.
type killed struct {
	pod, container string
	restarts       int32
}

// killPodOf SIGKILLs the first container of a running pod in
// gpufleet-system matching selector (the pod named pod when not empty).
func killPodOf(ctx context.Context, client kubernetes.Interface, selector, pod string) (killed, error) {
	pods, err := client.CoreV1().Pods(systemNS).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return killed{}, err
	}
	for _, p := range pods.Items {
		if (pod != "" && p.Name != pod) || p.Status.Phase != corev1.PodRunning || len(p.Status.ContainerStatuses) == 0 {
			continue
		}
		cs := p.Status.ContainerStatuses[0]
		if _, err := localcluster.KillContainer(cs.ContainerID); err != nil {
			return killed{}, err
		}
		return killed{pod: p.Name, container: cs.Name, restarts: cs.RestartCount}, nil
	}
	return killed{}, fmt.Errorf("no running pod %q matching %s", pod, selector)
}

// restarted says whether the kubelet restarted the killed container and
// its pod is Ready again.
func (k killed) restarted(ctx context.Context, client kubernetes.Interface) error {
	p, err := client.CoreV1().Pods(systemNS).Get(ctx, k.pod, metav1.GetOptions{})
	if err != nil {
		return err
	}
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name == k.container && (cs.RestartCount <= k.restarts || !cs.Ready) {
			return fmt.Errorf("pod %s container %s: %d restarts (%d before the kill), ready %v", k.pod, k.container, cs.RestartCount, k.restarts, cs.Ready)
		}
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status != corev1.ConditionTrue {
			return fmt.Errorf("pod %s not Ready", k.pod)
		}
	}
	return nil
}

// leaseHolder is the pod that holds the scheduler's leader lease.
func leaseHolder(ctx context.Context, client kubernetes.Interface) (string, error) {
	l, err := client.CoordinationV1().Leases(systemNS).Get(ctx, "gpufleet-scheduler", metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" {
		return "", fmt.Errorf("no scheduler holds lease %s/gpufleet-scheduler", systemNS)
	}
	// "<pod name>_<uuid>".
	holder, _, _ := strings.Cut(*l.Spec.HolderIdentity, "_")
	return holder, nil
}

// leaderProbe creates GPU pods for gpufleet-scheduler right after its
// leader was killed and records when each is bound and when a scheduler
// holds the lease again.
type leaderProbe struct {
	client  kubernetes.Interface
	killed  time.Time
	old     string
	pods    []string
	mu      sync.Mutex
	newLead time.Time
	bound   map[string]time.Time
}

const probePods = 3

func startLeaderProbe(t *testing.T, ctx context.Context, client kubernetes.Interface, old string) *leaderProbe {
	t.Helper()
	p := &leaderProbe{client: client, killed: time.Now(), old: old, bound: map[string]time.Time{}}
	for i := range probePods {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("chaos-probe-%d", i), Namespace: stack.Namespace},
			Spec: corev1.PodSpec{
				SchedulerName:                 schedconfig.SchedulerName,
				TerminationGracePeriodSeconds: ptr.To[int64](0),
				Containers: []corev1.Container{{
					Name: "pause", Image: localcluster.PauseImage, ImagePullPolicy: corev1.PullNever,
					Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{names.ResourceGPUMilli: resource.MustParse("100")}},
				}},
			},
		}
		if _, err := client.CoreV1().Pods(stack.Namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		p.pods = append(p.pods, pod.Name)
	}
	t.Cleanup(func() {
		for _, name := range p.pods {
			_ = client.CoreV1().Pods(stack.Namespace).Delete(context.Background(), name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
		}
	})
	return p
}

// done says whether a scheduler leads again and every probe pod is bound.
func (p *leaderProbe) done(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if p.newLead.IsZero() {
		l, err := p.client.CoordinationV1().Leases(systemNS).Get(ctx, "gpufleet-scheduler", metav1.GetOptions{})
		if err != nil {
			return err
		}
		// A new holder, or the restarted pod taking the lease again (a new
		// acquire time after the kill).
		if l.Spec.AcquireTime != nil && l.Spec.AcquireTime.After(p.killed) {
			p.newLead = l.Spec.AcquireTime.Time
		} else if l.Spec.HolderIdentity != nil && !strings.HasPrefix(*l.Spec.HolderIdentity, p.old+"_") {
			p.newLead = now
		}
	}
	for _, name := range p.pods {
		if _, ok := p.bound[name]; ok {
			continue
		}
		pod, err := p.client.CoreV1().Pods(stack.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if pod.Spec.NodeName != "" {
			// When the scheduler bound it (the condition's time, to the
			// second), else now.
			at := now
			for _, c := range pod.Status.Conditions {
				if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionTrue {
					at = c.LastTransitionTime.Time
				}
			}
			p.bound[name] = at
		}
	}
	if p.newLead.IsZero() || len(p.bound) < len(p.pods) {
		return fmt.Errorf("new leader: %v, %d of %d probe pods bound", !p.newLead.IsZero(), len(p.bound), len(p.pods))
	}
	return nil
}

// boundWithoutLeader counts probe pods bound before a scheduler held the
// lease again (there should be none: a standby binds only once it leads).
func (p *leaderProbe) boundWithoutLeader() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, at := range p.bound {
		// Bind times are whole seconds: only a bind a whole second before
		// the new leader's acquisition counts.
		if at.Before(p.newLead.Truncate(time.Second)) {
			n++
		}
	}
	return n
}

func daemonSetReady(ctx context.Context, client kubernetes.Interface) error {
	ds, err := client.AppsV1().DaemonSets(systemNS).Get(ctx, "gpufleet-gpu-agent", metav1.GetOptions{})
	if err != nil {
		return err
	}
	if ds.Status.NumberReady != ds.Status.DesiredNumberScheduled || ds.Status.DesiredNumberScheduled == 0 {
		return fmt.Errorf("gpu-agent: %d of %d ready", ds.Status.NumberReady, ds.Status.DesiredNumberScheduled)
	}
	return nil
}

// allocatableBack says whether the node advertises all its GPUs again
// (the agent's device plugin re-registered).
func allocatableBack(ctx context.Context, client kubernetes.Interface) error {
	nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, n := range nodes.Items {
		milli := n.Status.Allocatable[names.ResourceGPUMilli]
		if milli.Value() != stack.RealNodeGPUs*1000 {
			return fmt.Errorf("node %s advertises %s %s", n.Name, milli.String(), names.ResourceGPUMilli)
		}
	}
	return nil
}

// doubleAssigned counts the GPUs given to more than they hold: annotated
// whole to two pods or to a pod and shares, or shares over 1000 milli; and
// model containers whose device-plugin environment disagrees with their
// pod's annotation.
func doubleAssigned(t *testing.T, ctx context.Context, client kubernetes.Interface) int {
	t.Helper()
	pods, err := client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	whole, milli := map[string]int{}, map[string]int64{}
	bad := 0
	for _, p := range pods.Items {
		idx := p.Annotations[names.AnnotationGPUIndices]
		if idx == "" || p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		var m int64
		gpus := 0
		for _, c := range p.Spec.Containers {
			if q, ok := c.Resources.Limits[names.ResourceGPUMilli]; ok {
				m += q.Value()
			}
			if q, ok := c.Resources.Limits[names.ResourceGPU]; ok {
				gpus += int(q.Value())
			}
		}
		for _, g := range strings.Split(idx, ",") {
			key := p.Spec.NodeName + "/" + g
			if gpus > 0 {
				whole[key]++
			} else {
				milli[key] += m
			}
		}
		for _, cs := range p.Status.ContainerStatuses {
			if cs.ContainerID == "" || cs.State.Running == nil {
				continue
			}
			env, err := localcluster.ContainerEnv(cs.ContainerID)
			if err == nil && env["GPUFLEET_GPU_INDICES"] != "" && env["GPUFLEET_GPU_INDICES"] != idx {
				t.Errorf("pod %s/%s container %s runs on GPUs %s, annotated %s", p.Namespace, p.Name, cs.Name, env["GPUFLEET_GPU_INDICES"], idx)
				bad++
			}
		}
	}
	for key, n := range whole {
		if n > 1 || (n == 1 && milli[key] > 0) {
			t.Errorf("GPU %s given whole to %d pods and in %d milli of shares", key, n, milli[key])
			bad++
		}
	}
	for key, m := range milli {
		if m > 1000 {
			t.Errorf("GPU %s has %d milli given out", key, m)
			bad++
		}
	}
	return bad
}
