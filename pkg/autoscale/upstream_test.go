package autoscale

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta/testrestmapper"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	corelisters "k8s.io/client-go/listers/core/v1"
	scalefake "k8s.io/client-go/scale/fake"
	core "k8s.io/client-go/testing"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/api/legacyscheme"
	hpav2 "k8s.io/kubernetes/pkg/apis/autoscaling/v2"
	"k8s.io/kubernetes/pkg/controller/podautoscaler"
	metricsclient "k8s.io/kubernetes/pkg/controller/podautoscaler/metrics"
	"k8s.io/utils/ptr"

	_ "k8s.io/kubernetes/pkg/apis/apps/install"
	_ "k8s.io/kubernetes/pkg/apis/autoscaling/install"
)

const ns = "ml"

// fakeMetrics serves per-pod raw metrics from a function of the pods.
type fakeMetrics struct {
	pods   corelisters.PodLister
	values func(metric string, pods []*corev1.Pod) map[string]int64
	onRaw  func(metric string, pods []*corev1.Pod, values map[string]int64)
}

func (f *fakeMetrics) GetResourceMetric(context.Context, corev1.ResourceName, string, labels.Selector, string) (metricsclient.PodMetricsInfo, time.Time, error) {
	return nil, time.Time{}, fmt.Errorf("not served")
}

func (f *fakeMetrics) GetRawMetric(metric, namespace string, selector, _ labels.Selector) (metricsclient.PodMetricsInfo, time.Time, error) {
	pods, err := f.pods.Pods(namespace).List(selector)
	if err != nil {
		return nil, time.Time{}, err
	}
	vals := f.values(metric, pods)
	if f.onRaw != nil {
		f.onRaw(metric, pods, vals)
	}
	out := metricsclient.PodMetricsInfo{}
	for name, v := range vals {
		out[name] = metricsclient.PodMetric{Value: v, Timestamp: time.Now(), Window: time.Second}
	}
	return out, time.Now(), nil
}

func (f *fakeMetrics) GetObjectMetric(string, string, *autoscalingv2.CrossVersionObjectReference, labels.Selector) (int64, time.Time, error) {
	return 0, time.Time{}, fmt.Errorf("not served")
}

func (f *fakeMetrics) GetExternalMetric(string, string, labels.Selector) ([]int64, time.Time, error) {
	return nil, time.Time{}, fmt.Errorf("not served")
}

func testPod(name string, phase corev1.PodPhase) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": "web"}},
		Status:     corev1.PodStatus{Phase: phase},
	}
}

// TestReplicaCalculationMatchesUpstream compares podsReplicas with the
// upstream ReplicaCalculator (the code kube-controller-manager runs) on
// random pod sets: ready pods with values, Pending pods, running pods with
// no value. The upstream Tolerances cannot be built outside its package,
// so this compares at tolerance 0; TestDecisionsMatchUpstreamController
// covers tolerances.
func TestReplicaCalculationMatchesUpstream(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		ready, pending, missing := rng.IntN(8), rng.IntN(4), rng.IntN(3)
		if ready+pending+missing == 0 {
			ready = 1
		}
		target := int64(1 + rng.IntN(100000))
		var pods []runtime.Object
		vals := map[string]int64{}
		m := PodsMetric{TargetMilli: target, Unready: pending, Missing: missing}
		for k := range ready {
			name := "r" + strconv.Itoa(k)
			pods = append(pods, testPod(name, corev1.PodRunning))
			v := int64(rng.IntN(int(3 * target)))
			vals[name] = v
			m.Values = append(m.Values, v)
		}
		for k := range pending {
			name := "p" + strconv.Itoa(k)
			pods = append(pods, testPod(name, corev1.PodPending))
			if rng.IntN(2) == 0 {
				vals[name] = int64(rng.IntN(int(3 * target))) // ignored: Pending
			}
		}
		for k := range missing {
			pods = append(pods, testPod("m"+strconv.Itoa(k), corev1.PodRunning))
		}
		client := fake.NewClientset(pods...)
		inf := informers.NewSharedInformerFactory(client, 0)
		lister := inf.Core().V1().Pods().Lister()
		ctx, cancel := context.WithCancel(context.Background())
		inf.Start(ctx.Done())
		inf.WaitForCacheSync(ctx.Done())
		calc := podautoscaler.NewReplicaCalculator(&fakeMetrics{pods: lister, values: func(string, []*corev1.Pod) map[string]int64 { return vals }},
			lister, 5*time.Minute, 30*time.Second)
		current := int32(ready + pending + missing + rng.IntN(3))
		want, _, _, wantErr := calc.GetMetricReplicas(current, target, "rps", podautoscaler.Tolerances{}, ns, labels.SelectorFromSet(labels.Set{"app": "web"}), labels.Everything())
		got, gotErr := podsReplicas(m, current, Tolerances{})
		cancel()
		inf.Shutdown()
		if (wantErr != nil) != (gotErr != nil) || (wantErr == nil && got != want) {
			t.Fatalf("case %d (current %d, metric %+v): upstream %d, %v; port %d, %v", i, current, m, want, wantErr, got, gotErr)
		}
	}
}

// upstreamSync is what the real controller saw and decided in one sync.
type upstreamSync struct {
	at       time.Duration
	current  int32
	metrics  []Metric
	desired  int32
	finished bool
}

// TestDecisionsMatchUpstreamController runs the real HorizontalController
// (k8s.io/kubernetes/pkg/controller/podautoscaler, the code of
// kube-controller-manager) in real time on fake clients for about 40
// syncs of 800 ms (33 s), with a load that changes every 2 s, two Pods metrics,
// pods that start Pending, a per-HPA tolerance, stabilization windows
// and rate policies. Every sync's inputs (replicas, pod values, Pending
// pods) and the time are recorded; the port replays them on its simulated
// clock and must decide the same replica count every time.
//
// The windows (2 s) and policy periods (2 s) sit between multiples of the
// sync period (1.6 s, 2.4 s), so the microseconds between the recorded
// time and the controller's own time.Now() cannot change a decision.
func TestDecisionsMatchUpstreamController(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the upstream controller in real time for about 33 s")
	}
	ctx, cancel := context.WithCancel(klog.NewContext(context.Background(), klog.Background()))
	defer cancel()
	loads := []float64{100, 300, 300, 700, 650, 200, 120, 80, 500, 900, 150, 40, 150, 150, 165, 165}
	const period = 2 * time.Second
	start := time.Now()
	load := func(at time.Time) float64 {
		i := int(at.Sub(start) / period)
		return loads[min(i, len(loads)-1)]
	}

	behavior := &autoscalingv2.HorizontalPodAutoscalerBehavior{
		ScaleUp: &autoscalingv2.HPAScalingRules{
			StabilizationWindowSeconds: ptr.To[int32](2),
			Tolerance:                  ptr.To(resource.MustParse("50m")),
			Policies: []autoscalingv2.HPAScalingPolicy{
				{Type: autoscalingv2.PodsScalingPolicy, Value: 2, PeriodSeconds: 2},
				{Type: autoscalingv2.PercentScalingPolicy, Value: 50, PeriodSeconds: 2},
			},
		},
		ScaleDown: &autoscalingv2.HPAScalingRules{
			StabilizationWindowSeconds: ptr.To[int32](2),
			Policies:                   []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PercentScalingPolicy, Value: 50, PeriodSeconds: 2}},
		},
	}
	podsMetric := func(name string) autoscalingv2.MetricSpec {
		return autoscalingv2.MetricSpec{Type: autoscalingv2.PodsMetricSourceType, Pods: &autoscalingv2.PodsMetricSource{
			Metric: autoscalingv2.MetricIdentifier{Name: name},
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: resource.NewQuantity(50, resource.DecimalSI)},
		}}
	}
	hpa := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			MinReplicas:    ptr.To[int32](1), MaxReplicas: 12,
			Metrics:  []autoscalingv2.MetricSpec{podsMetric("requests_per_second"), podsMetric("requests_per_second_forecast")},
			Behavior: behavior.DeepCopy(),
		},
	}
	hpav2.SetDefaults_HorizontalPodAutoscaler(hpa)
	client := fake.NewClientset(hpa, testPod("web-0", corev1.PodRunning), testPod("web-1", corev1.PodRunning))

	var mu sync.Mutex
	replicas := int32(2)
	nextPod := 2
	var pods []string // in creation order
	pods = append(pods, "web-0", "web-1")
	var syncs []*upstreamSync

	scales := &scalefake.FakeScaleClient{}
	scales.AddReactor("get", "deployments", func(core.Action) (bool, runtime.Object, error) {
		mu.Lock()
		defer mu.Unlock()
		if n := len(syncs); n > 0 {
			syncs[n-1].finished = true
		}
		syncs = append(syncs, &upstreamSync{at: time.Since(start), current: replicas, desired: replicas})
		return true, &autoscalingv1.Scale{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
			Spec:       autoscalingv1.ScaleSpec{Replicas: replicas},
			Status:     autoscalingv1.ScaleStatus{Replicas: replicas, Selector: "app=web"},
		}, nil
	})
	scales.AddReactor("update", "deployments", func(a core.Action) (bool, runtime.Object, error) {
		s := a.(core.UpdateAction).GetObject().(*autoscalingv1.Scale)
		mu.Lock()
		defer mu.Unlock()
		old := replicas
		replicas = s.Spec.Replicas
		syncs[len(syncs)-1].desired = replicas
		for ; old < replicas; old++ {
			name := "web-" + strconv.Itoa(nextPod)
			nextPod++
			pods = append(pods, name)
			if _, err := client.CoreV1().Pods(ns).Create(ctx, testPod(name, corev1.PodPending), metav1.CreateOptions{}); err != nil {
				return true, nil, err
			}
			time.AfterFunc(1200*time.Millisecond, func() {
				p := testPod(name, corev1.PodRunning)
				_, _ = client.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{})
			})
		}
		for ; old > replicas; old-- {
			name := pods[len(pods)-1]
			pods = pods[:len(pods)-1]
			if err := client.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
				return true, nil, err
			}
		}
		return true, s, nil
	})

	inf := informers.NewSharedInformerFactory(client, 0)
	podLister := inf.Core().V1().Pods().Lister()
	metrics := &fakeMetrics{
		pods: podLister,
		values: func(metric string, ps []*corev1.Pod) map[string]int64 {
			running := 0
			for _, p := range ps {
				if p.Status.Phase == corev1.PodRunning {
					running++
				}
			}
			l := load(time.Now())
			if metric == "requests_per_second_forecast" {
				l *= 1.3
			}
			out := map[string]int64{}
			for _, p := range ps {
				if p.Status.Phase == corev1.PodRunning {
					out[p.Name] = int64(math.Round(l / float64(running) * 1000))
				}
			}
			return out
		},
		onRaw: func(metric string, ps []*corev1.Pod, vals map[string]int64) {
			m := PodsMetric{TargetMilli: 50000}
			for _, p := range ps {
				if p.Status.Phase == corev1.PodPending {
					m.Unready++
				} else {
					m.Values = append(m.Values, vals[p.Name])
				}
			}
			mu.Lock()
			defer mu.Unlock()
			s := syncs[len(syncs)-1]
			s.metrics = append(s.metrics, m)
		},
	}
	controller := podautoscaler.NewHorizontalController(ctx, client.CoreV1(), scales, client.AutoscalingV2(),
		testrestmapper.TestOnlyStaticRESTMapper(legacyscheme.Scheme), metrics,
		inf.Autoscaling().V2().HorizontalPodAutoscalers(), inf.Core().V1().Pods(),
		800*time.Millisecond, 5*time.Minute, 0.1, 30*time.Second, 30*time.Second)
	inf.Start(ctx.Done())
	go controller.Run(ctx, 1)

	end := time.Duration(len(loads))*period + time.Second
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, end+30*time.Second, false, func(context.Context) (bool, error) {
		return time.Since(start) > end, nil
	}); err != nil {
		t.Fatal(err)
	}
	cancel()
	mu.Lock()
	defer mu.Unlock()

	port := NewHPA(1, 12, behavior)
	port.Tolerance, port.DownscaleStabilization = 0.1, 5*time.Minute
	compared, changes := 0, 0
	for i, s := range syncs {
		if !s.finished || len(s.metrics) != 2 {
			continue // the last sync, cut off by the end of the test
		}
		d := port.Sync(s.at, s.current, s.metrics)
		if d.Desired != s.desired {
			t.Errorf("sync %d at %v (current %d, metrics %+v): controller chose %d, the port %d (proposal %d)", i, s.at, s.current, s.metrics, s.desired, d.Desired, d.Proposal)
		}
		compared++
		if s.desired != s.current {
			changes++
		}
	}
	t.Logf("%d syncs compared, %d of them scaled", compared, changes)
	if compared < 30 || changes < 8 {
		t.Errorf("only %d syncs (%d scaling) were compared: want at least 30 and 8", compared, changes)
	}
}
