package integration

import (
	"context"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	cmclient "k8s.io/metrics/pkg/client/custom_metrics"
	emclient "k8s.io/metrics/pkg/client/external_metrics"

	agentapp "github.com/gpufleet/gpufleet/cmd/gpu-agent/app"
	gpufleetapp "github.com/gpufleet/gpufleet/cmd/gpufleet/app"
	"github.com/gpufleet/gpufleet/internal/adaptertest"
	"github.com/gpufleet/gpufleet/internal/loadgen"
	"github.com/gpufleet/gpufleet/internal/noderunner"
	"github.com/gpufleet/gpufleet/internal/testutil"
	"github.com/gpufleet/gpufleet/pkg/cost"
	"github.com/gpufleet/gpufleet/pkg/localcluster"
	"github.com/gpufleet/gpufleet/pkg/localcluster/clustertest"
	"github.com/gpufleet/gpufleet/pkg/names"
	"github.com/gpufleet/gpufleet/pkg/nvml/sim/activity"
)

const (
	adapterNode = "sim-v100-0"
	modelNS     = "ml"
	modelPort   = 8000
)

// TestIntegrationAdapterHPA registers the metrics adapter with the real
// kube-apiserver and checks, through the aggregation layer: values of every
// kind (pods, nodes, Deployment, external) with true timestamps and
// windows; GPU load from a gpu-agent on a simulated node; that a real
// kube-controller-manager HPA scales a Deployment up on requests_per_second
// and back down when the load stops; and that a restarted adapter serves
// again within two scrape intervals of becoming ready.
func TestIntegrationAdapterHPA(t *testing.T) {
	c, client := clustertest.Start(t, localcluster.Options{})
	clustertest.StartControllerManager(t, c, localcluster.ControllerManagerOptions{
		ExtraArgs: []string{"--horizontal-pod-autoscaler-sync-period=1s"},
	})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	createNodes(t, client, localcluster.GPUNode{Name: adapterNode})

	adapter := startAdapter(t, c, 0, "--cost-period=1s")
	if err := adaptertest.Register(ctx, c.Config, adapter.port, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	simDir := t.TempDir()
	runner := noderunner.New(client, []string{adapterNode}, workloads{
		model: noderunner.Exporter{Port: modelPort},
		agent: agentWorkload{simDir: simDir},
	}, noderunner.WithBinding(corev1.DefaultSchedulerName, adapterNode))
	go func() { _ = runner.Run(ctx) }()

	mustCreate(t, client, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: modelNS}})
	mustCreate(t, client, agentPod())
	mustCreate(t, client, modelDeployment(1))
	pods, err := noderunner.WaitRunning(ctx, client, modelNS, "app=bert", 1, 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}

	load := loadgen.New(5 * time.Second)
	go load.Run(ctx)
	go followReadyPods(ctx, client, load)
	load.SetRate(8)

	// The simulated GPU 0 is 50 % busy on behalf of the model pod.
	rep, err := activity.NewReporter(simDir, []int{0}, &activity.PodIdentity{Namespace: modelNS, Name: pods[0].Name})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rep.Close() })
	go reportBusy(ctx, rep, 0.5)

	cm, em := metricsClients(t, c)
	t.Run("values", func(t *testing.T) {
		podName := pods[0].Name
		checks := []struct {
			name string
			get  func() (value float64, window *int64, ts time.Time, err error)
			want float64
			tol  float64
			win  *int64
		}{
			{"pod requests_per_second", podMetric(cm, podName, "requests_per_second", labels.Everything()), 8, 0.3, ptr(2)},
			{"pod requests_per_second model=bert", podMetric(cm, podName, "requests_per_second", labels.SelectorFromSet(labels.Set{"model": "bert"})), 8, 0.3, ptr(2)},
			{"pod inference_queue_depth", podMetric(cm, podName, "inference_queue_depth", labels.Everything()), 0, 0, nil},
			{"pod gpu_utilization", podMetric(cm, podName, "gpu_utilization", labels.Everything()), 0.5, 0.2, nil},
			{"node gpu_utilization (8 GPUs)", nodeMetric(cm, adapterNode, "gpu_utilization"), 0.5 / 8, 0.2, nil},
			{"deployment requests_per_second", objectMetric(cm, schema.GroupKind{Group: "apps", Kind: "Deployment"}, "bert", "requests_per_second"), 8, 0.3, ptr(2)},
			// A flat load and seconds of history: the forecast is the reactive rate,
			// served through kube-apiserver like the others.
			{"deployment requests_per_second_forecast", objectMetric(cm, schema.GroupKind{Group: "apps", Kind: "Deployment"}, "bert", "requests_per_second_forecast"), 8, 0.3, ptr(2)},
			{"pod requests_per_second_forecast", podMetric(cm, podName, "requests_per_second_forecast", labels.Everything()), 8, 0.3, ptr(2)},
			{"external requests_per_second", externalMetric(em, "requests_per_second"), 8, 0.3, ptr(2)},
		}
		for _, tc := range checks {
			t.Run(tc.name, func(t *testing.T) {
				var last string
				err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
					v, win, ts, err := tc.get()
					if err != nil {
						last = err.Error()
						return false, nil
					}
					last = fmt.Sprintf("value %v windowSeconds %v (want %v) timestamp %v", v, deref(win), deref(tc.win), ts)
					if age := time.Since(ts); age > 3*time.Second || age < -time.Second {
						return false, nil // not a current value yet
					}
					if (tc.win == nil) != (win == nil) || (win != nil && *win != *tc.win) {
						return false, nil // a young series covers less than the window
					}
					return math.Abs(v-tc.want) <= tc.tol*math.Max(tc.want, 0.01), nil
				})
				if err != nil {
					t.Fatalf("no current value near %v: last %s", tc.want, last)
				}
			})
		}
		if _, err := cm.NamespacedMetrics(modelNS).GetForObject(schema.GroupKind{Kind: "Pod"}, podName, "requests_per_second",
			labels.SelectorFromSet(labels.Set{"model": "other"})); err == nil {
			t.Error("requests_per_second for model=other: got a value, want not found")
		}
		if _, err := cm.NamespacedMetrics(modelNS).GetForObject(schema.GroupKind{Kind: "Pod"}, "no-such-pod", "requests_per_second", labels.Everything()); err == nil {
			t.Error("requests_per_second of a pod that does not exist: got a value, want not found")
		}
	})

	t.Run("cost report", func(t *testing.T) {
		hc, host := adapterHTTP(t, c, adapter.port)
		var row cost.Row
		var last string
		err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			now := time.Now()
			url := host + cost.ReportPath + "?by=workload&from=" + now.Add(-time.Hour).Format(time.RFC3339) + "&to=" + now.Add(time.Minute).Format(time.RFC3339)
			var rep cost.Report
			if err := getJSON(ctx, hc, url, &rep); err != nil {
				last = err.Error()
				return false, nil
			}
			for _, r := range rep.Rows {
				if strings.Contains(r.Group, "bert") {
					row = r
				}
			}
			last = fmt.Sprintf("%+v", rep.Rows)
			return row.GPUHoursAllocated > 0 && row.GPUHoursUsed > 0 && row.Efficiency != nil, nil
		})
		if err != nil {
			t.Fatalf("no allocated and used GPU time for the bert Deployment: last %s", last)
		}
		t.Logf("bert Deployment: %.5f GPU-hours allocated, %.5f used, efficiency %v", row.GPUHoursAllocated, row.GPUHoursUsed, *row.Efficiency)
		// Half a GPU allocated, kept 50 % busy: efficiency near 1 where use
		// was observed.
		if *row.Efficiency < 0.5 || *row.Efficiency > 1.5 {
			t.Errorf("efficiency %v, want about 1 (a 500-milli pod keeping its GPU 50 %% busy): %+v", row.Efficiency, row)
		}
		// The CLI against the same endpoint, with the admin kubeconfig.
		out := filepath.Join(t.TempDir(), "cost.csv")
		cli := gpufleetapp.NewCommand()
		cli.SetArgs([]string{"cost", "--adapter-url", host, "--insecure-skip-tls-verify", "--kubeconfig", c.KubeconfigPath,
			"--by", "workload", "--format", "csv", "--last", "1h", "-o", out})
		if err := cli.Execute(); err != nil {
			t.Fatalf("gpufleet cost: %v", err)
		}
		csv, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(csv), "bert") {
			t.Errorf("gpufleet cost --by workload has no bert row:\n%s", csv)
		}
		body, err := getText(ctx, hc, host+"/metrics")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(body, `gpufleet_cost_gpu_allocated_seconds_total{`) || !strings.Contains(body, `workload="bert"`) {
			t.Errorf("adapter /metrics lacks the bert Deployment's gpufleet_cost_gpu_allocated_seconds_total:\n%s", testutil.Lines(body, "gpufleet_cost_gpu_allocated_seconds_total"))
		}
	})

	t.Run("HPA scales up and down", func(t *testing.T) {
		mustCreate(t, client, modelHPA())
		load.SetRate(40) // 10/s per pod at 4 replicas
		step := time.Now()
		waitReplicas(t, client, 4, 60*time.Second)
		t.Logf("scaled to 4 replicas %.1f s after the load step", time.Since(step).Seconds())
		load.SetRate(0)
		step = time.Now()
		waitReplicas(t, client, 1, 60*time.Second)
		t.Logf("scaled back to 1 replica %.1f s after the load stopped", time.Since(step).Seconds())
		if f := load.Failed(); f > 0 {
			t.Errorf("%d of %d requests failed, last: %s", f, load.Sent(), load.LastError())
		}
	})

	t.Run("restart serves again within two intervals", func(t *testing.T) {
		load.SetRate(8)
		podName := mustOnePod(t, client)
		get := podMetric(cm, podName, "requests_per_second", labels.Everything())
		if err := adapter.Kill(); err != nil {
			t.Fatal(err)
		}
		adapter = startAdapter(t, c, adapter.port, "--cost-period=1s")
		ready := time.Now()
		err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
			_, _, ts, err := get()
			return err == nil && ts.After(ready.Add(-time.Second)), nil
		})
		if err != nil {
			t.Fatalf("no value after the restart: %v", err)
		}
		took := time.Since(ready)
		t.Logf("values again %.2f s after the restarted adapter was ready", took.Seconds())
		// Two 1 s scrape intervals, plus the aggregator noticing the adapter
		// is back and this poll's own granularity.
		if took > 3500*time.Millisecond {
			t.Errorf("values again after %v, want within two scrape intervals (plus 1.5 s slack)", took)
		}
	})
}

// workloads starts the model exporter for model pods and the gpu-agent for
// agent pods.
type workloads struct {
	model noderunner.Workload
	agent noderunner.Workload
}

func (w workloads) Start(ctx context.Context, pod *corev1.Pod, ip string) (func(), error) {
	if pod.Labels["app.kubernetes.io/name"] == "gpu-agent" {
		return w.agent.Start(ctx, pod, ip)
	}
	return w.model.Start(ctx, pod, ip)
}

// agentWorkload runs the real gpu-agent in this process on a simulated node.
type agentWorkload struct{ simDir string }

func (a agentWorkload) Start(_ context.Context, pod *corev1.Pod, ip string) (func(), error) {
	o := agentapp.NewOptions()
	o.NVML, o.NodeName, o.SimDir = agentapp.NVMLMock, pod.Spec.NodeName, a.simDir
	o.Listen = net.JoinHostPort(ip, "9400")
	o.PodResources, o.LabelNode, o.Interval = "", false, 200*time.Millisecond
	o.ProcRoot = "/proc"
	if err := o.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- agentapp.Run(ctx, o) }()
	return func() { cancel(); <-done }, nil
}

func reportBusy(ctx context.Context, rep *activity.Reporter, fraction float64) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			rep.AddBusy(fraction * 0.1)
			_ = rep.Flush()
		}
	}
}

// followReadyPods keeps the load generator's targets equal to the ready
// model pods.
func followReadyPods(ctx context.Context, client kubernetes.Interface, load *loadgen.Generator) {
	_ = wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		list, err := client.CoreV1().Pods(modelNS).List(ctx, metav1.ListOptions{LabelSelector: "app=bert"})
		if err != nil {
			return false, nil
		}
		var urls []string
		for _, p := range list.Items {
			if p.DeletionTimestamp == nil && noderunner.Ready(&p) && p.Status.PodIP != "" {
				urls = append(urls, "http://"+net.JoinHostPort(p.Status.PodIP, strconv.Itoa(modelPort))+"/v2/models/bert/infer")
			}
		}
		load.SetTargets(urls)
		return false, nil
	})
}

func agentPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "gpu-agent-" + adapterNode, Namespace: "kube-system",
			Labels: map[string]string{"app.kubernetes.io/name": "gpu-agent"}},
		Spec: corev1.PodSpec{NodeName: adapterNode, Containers: []corev1.Container{{Name: "agent", Image: "gpufleet/gpu-agent"}}},
	}
}

func modelDeployment(replicas int32) *appsv1.Deployment {
	lbl := map[string]string{"app": "bert"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "bert", Namespace: modelNS},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: lbl},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: lbl, Annotations: map[string]string{
					names.AnnotationScrape: "true", names.AnnotationScrapePort: strconv.Itoa(modelPort),
				}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "server", Image: "gpufleet/inference-server",
					Resources: corev1.ResourceRequirements{
						Requests: corev1.ResourceList{names.ResourceGPUMilli: resource.MustParse("500")},
						Limits:   corev1.ResourceList{names.ResourceGPUMilli: resource.MustParse("500")},
					}}}},
			},
		},
	}
}

func modelHPA() *autoscalingv2.HorizontalPodAutoscaler {
	zero, one := int32(0), int32(1)
	return &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "bert", Namespace: modelNS},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "bert"},
			MinReplicas:    &one,
			MaxReplicas:    4,
			Metrics: []autoscalingv2.MetricSpec{{
				Type: autoscalingv2.PodsMetricSourceType,
				Pods: &autoscalingv2.PodsMetricSource{
					Metric: autoscalingv2.MetricIdentifier{Name: "requests_per_second"},
					Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: resource.NewQuantity(10, resource.DecimalSI)},
				},
			}},
			Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{
				ScaleUp:   &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: &zero},
				ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: &zero},
			},
		},
	}
}

func waitReplicas(t *testing.T, client kubernetes.Interface, want int32, timeout time.Duration) {
	t.Helper()
	var got int32
	err := wait.PollUntilContextTimeout(context.Background(), 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		d, err := client.AppsV1().Deployments(modelNS).Get(ctx, "bert", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		got = d.Status.ReadyReplicas
		return *d.Spec.Replicas == want && got == want, nil
	})
	if err != nil {
		hpa, _ := client.AutoscalingV2().HorizontalPodAutoscalers(modelNS).Get(context.Background(), "bert", metav1.GetOptions{})
		t.Fatalf("Deployment not at %d ready replicas within %v (ready %d); HPA status: %+v", want, timeout, got, hpa.Status)
	}
}

func mustOnePod(t *testing.T, client kubernetes.Interface) string {
	t.Helper()
	pods, err := noderunner.WaitRunning(context.Background(), client, modelNS, "app=bert", 1, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return pods[0].Name
}

func mustCreate(t *testing.T, client kubernetes.Interface, obj any) {
	t.Helper()
	ctx := context.Background()
	var err error
	switch o := obj.(type) {
	case *corev1.Namespace:
		_, err = client.CoreV1().Namespaces().Create(ctx, o, metav1.CreateOptions{})
	case *corev1.Pod:
		_, err = client.CoreV1().Pods(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
	case *appsv1.Deployment:
		_, err = client.AppsV1().Deployments(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
	case *autoscalingv2.HorizontalPodAutoscaler:
		_, err = client.AutoscalingV2().HorizontalPodAutoscalers(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
	default:
		err = fmt.Errorf("mustCreate: unsupported %T", obj)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func metricsClients(t *testing.T, c *localcluster.Cluster) (cmclient.CustomMetricsClient, emclient.ExternalMetricsClient) {
	t.Helper()
	cm, em, err := adaptertest.MetricsClients(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	return cm, em
}

type getter = func() (float64, *int64, time.Time, error)

func podMetric(cm cmclient.CustomMetricsClient, pod, metric string, sel labels.Selector) getter {
	return func() (float64, *int64, time.Time, error) {
		v, err := cm.NamespacedMetrics(modelNS).GetForObject(schema.GroupKind{Kind: "Pod"}, pod, metric, sel)
		if err != nil {
			return 0, nil, time.Time{}, err
		}
		return v.Value.AsApproximateFloat64(), v.WindowSeconds, v.Timestamp.Time, nil
	}
}

func nodeMetric(cm cmclient.CustomMetricsClient, node, metric string) getter {
	return func() (float64, *int64, time.Time, error) {
		v, err := cm.RootScopedMetrics().GetForObject(schema.GroupKind{Kind: "Node"}, node, metric, labels.Everything())
		if err != nil {
			return 0, nil, time.Time{}, err
		}
		return v.Value.AsApproximateFloat64(), v.WindowSeconds, v.Timestamp.Time, nil
	}
}

func objectMetric(cm cmclient.CustomMetricsClient, gk schema.GroupKind, name, metric string) getter {
	return func() (float64, *int64, time.Time, error) {
		v, err := cm.NamespacedMetrics(modelNS).GetForObject(gk, name, metric, labels.Everything())
		if err != nil {
			return 0, nil, time.Time{}, err
		}
		return v.Value.AsApproximateFloat64(), v.WindowSeconds, v.Timestamp.Time, nil
	}
}

func externalMetric(em emclient.ExternalMetricsClient, metric string) getter {
	return func() (float64, *int64, time.Time, error) {
		list, err := em.NamespacedMetrics(modelNS).List(metric, labels.Everything())
		if err != nil {
			return 0, nil, time.Time{}, err
		}
		if len(list.Items) != 1 {
			return 0, nil, time.Time{}, fmt.Errorf("%d external values, want 1", len(list.Items))
		}
		v := list.Items[0]
		return v.Value.AsApproximateFloat64(), v.WindowSeconds, v.Timestamp.Time, nil
	}
}

func ptr(v int64) *int64 { return &v }

func deref(p *int64) any {
	if p == nil {
		return "nil"
	}
	return *p
}
