package integration

import (
	"context"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/spf13/pflag"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/metrics/pkg/apis/custom_metrics"
	"k8s.io/metrics/pkg/apis/external_metrics"
	basecmd "sigs.k8s.io/custom-metrics-apiserver/pkg/cmd"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/gpufleet/gpufleet/internal/adaptertest"
	"github.com/gpufleet/gpufleet/pkg/autoscale"
	"github.com/gpufleet/gpufleet/pkg/localcluster"
	"github.com/gpufleet/gpufleet/pkg/localcluster/clustertest"
)

const autoscaleNS = "autoscale"

// replayProvider serves requests_per_second and
// requests_per_second_forecast of Deployment autoscale/web from a load
// schedule in real time, and records every read with the Deployment's
// replicas at that moment: the inputs of each HPA sync.
type replayProvider struct {
	client kubernetes.Interface
	loads  []float64
	period time.Duration

	mu    sync.Mutex
	start time.Time
	reads []metricRead
}

type metricRead struct {
	at             time.Duration
	metric         string
	valueMilli     int64
	spec, status   int32
	replicasErr    error
	sinceStartLoad int
}

var (
	_ cmprovider.CustomMetricsProvider   = &replayProvider{}
	_ cmprovider.ExternalMetricsProvider = &replayProvider{}
)

// GetExternalMetric serves nothing: adaptertest.Register waits for every
// metrics APIService, the external one included.
func (p *replayProvider) GetExternalMetric(context.Context, string, labels.Selector, cmprovider.ExternalMetricInfo) (*external_metrics.ExternalMetricValueList, error) {
	return &external_metrics.ExternalMetricValueList{}, nil
}

func (p *replayProvider) ListAllExternalMetrics() []cmprovider.ExternalMetricInfo { return nil }

func (p *replayProvider) GetMetricByName(ctx context.Context, name types.NamespacedName, info cmprovider.CustomMetricInfo, _ labels.Selector) (*custom_metrics.MetricValue, error) {
	if name.Namespace != autoscaleNS || name.Name != "web" || info.GroupResource.Resource != "deployments" {
		return nil, cmprovider.NewMetricNotFoundForError(info.GroupResource, info.Metric, name.Name)
	}
	d, err := p.client.AppsV1().Deployments(autoscaleNS).Get(ctx, "web", metav1.GetOptions{})
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if p.start.IsZero() {
		p.start = now
	}
	i := min(int(now.Sub(p.start)/p.period), len(p.loads)-1)
	load := p.loads[i]
	if info.Metric == "requests_per_second_forecast" {
		load *= 1.3
	}
	r := metricRead{at: now.Sub(p.start), metric: info.Metric, valueMilli: int64(math.Round(load * 1000)), replicasErr: err, sinceStartLoad: i}
	if err == nil {
		r.spec, r.status = *d.Spec.Replicas, d.Status.Replicas
	}
	p.reads = append(p.reads, r)
	return &custom_metrics.MetricValue{
		DescribedObject: custom_metrics.ObjectReference{Kind: "Deployment", APIVersion: "apps/v1", Namespace: autoscaleNS, Name: "web"},
		Metric:          custom_metrics.MetricIdentifier{Name: info.Metric},
		Timestamp:       metav1.NewTime(now),
		Value:           *resource.NewMilliQuantity(r.valueMilli, resource.DecimalSI),
	}, nil
}

func (p *replayProvider) GetMetricBySelector(context.Context, string, labels.Selector, cmprovider.CustomMetricInfo, labels.Selector) (*custom_metrics.MetricValueList, error) {
	return &custom_metrics.MetricValueList{}, nil
}

func (p *replayProvider) ListAllMetrics() []cmprovider.CustomMetricInfo {
	gr := schema.GroupResource{Group: "apps", Resource: "deployments"}
	return []cmprovider.CustomMetricInfo{
		{GroupResource: gr, Namespaced: true, Metric: "requests_per_second"},
		{GroupResource: gr, Namespaced: true, Metric: "requests_per_second_forecast"},
	}
}

// startReplayAPI serves p as custom.metrics.k8s.io on a free port,
// registered with the cluster's aggregation layer.
func startReplayAPI(t *testing.T, c *localcluster.Cluster, p *replayProvider) {
	t.Helper()
	port := freePort(t)
	base := &basecmd.AdapterBase{Name: "autoscale-replay"}
	base.FlagSet = pflag.NewFlagSet("replay", pflag.ContinueOnError)
	base.InstallFlags()
	if err := base.FlagSet.Parse(adaptertest.Flags(c, port, t.TempDir())); err != nil {
		t.Fatal(err)
	}
	base.WithCustomMetrics(p)
	base.WithExternalMetrics(p)
	srv, err := base.Server()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { _ = srv.GenericAPIServer.PrepareRun().RunWithContext(ctx) }()
	if err := adaptertest.Register(ctx, c.Config, port, 60*time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestIntegrationAutoscaleMatchesKCM replays a load schedule through a
// real kube-controller-manager's HPA controller (on a real kube-apiserver,
// the metrics served through the aggregation layer) and through
// pkg/autoscale's port, and checks that the port takes the same decision
// at every sync. The HPA scales a Deployment on two Object metrics with
// AverageValue targets (its pods stay Pending: no kubelet; the Object
// metric path reads status.replicas, not pods), with a per-HPA scale-up
// tolerance, 2 s stabilization windows and Pods/Percent policies; the
// controller syncs every 1.3 s, so windows and periods of 2 s sit between
// multiples of the sync period and the time a read is recorded (a few
// milliseconds before the controller's own time.Now()) cannot flip a
// decision.
func TestIntegrationAutoscaleMatchesKCM(t *testing.T) {
	c, client := clustertest.Start(t, localcluster.Options{})
	clustertest.StartControllerManager(t, c, localcluster.ControllerManagerOptions{
		ExtraArgs: []string{"--horizontal-pod-autoscaler-sync-period=1300ms"},
	})
	p := &replayProvider{client: client, period: 2600 * time.Millisecond,
		loads: []float64{100, 300, 300, 700, 650, 200, 120, 80, 500, 900, 150, 40, 150, 150, 165, 165}}
	startReplayAPI(t, c, p)
	ctx := t.Context()
	mustCreate(t, client, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: autoscaleNS}})
	replicas := int32(2)
	mustCreate(t, client, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: autoscaleNS},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "example.invalid/web:1"}}},
			},
		},
	})
	// The Deployment's status shows its 2 pods before the HPA exists.
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		d, err := client.AppsV1().Deployments(autoscaleNS).Get(ctx, "web", metav1.GetOptions{})
		return err == nil && d.Status.Replicas == 2, nil
	}); err != nil {
		t.Fatalf("the Deployment's status never showed 2 replicas: %v", err)
	}
	behavior := &autoscalingv2.HorizontalPodAutoscalerBehavior{
		ScaleUp: &autoscalingv2.HPAScalingRules{
			StabilizationWindowSeconds: new(int32(2)),
			Tolerance:                  resource.NewMilliQuantity(50, resource.DecimalSI),
			Policies: []autoscalingv2.HPAScalingPolicy{
				{Type: autoscalingv2.PodsScalingPolicy, Value: 2, PeriodSeconds: 2},
				{Type: autoscalingv2.PercentScalingPolicy, Value: 50, PeriodSeconds: 2},
			},
		},
		ScaleDown: &autoscalingv2.HPAScalingRules{
			StabilizationWindowSeconds: new(int32(2)),
			Policies:                   []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PercentScalingPolicy, Value: 50, PeriodSeconds: 2}},
		},
	}
	object := func(metric string) autoscalingv2.MetricSpec {
		return autoscalingv2.MetricSpec{Type: autoscalingv2.ObjectMetricSourceType, Object: &autoscalingv2.ObjectMetricSource{
			DescribedObject: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			Metric:          autoscalingv2.MetricIdentifier{Name: metric},
			Target:          autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: resource.NewQuantity(50, resource.DecimalSI)},
		}}
	}
	mustCreate(t, client, &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: autoscaleNS},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			MinReplicas:    new(int32(1)), MaxReplicas: 12,
			Metrics:  []autoscalingv2.MetricSpec{object("requests_per_second"), object("requests_per_second_forecast")},
			Behavior: behavior.DeepCopy(),
		},
	})
	// Replay until the schedule's end and one period more.
	end := time.Duration(len(p.loads)+1) * p.period
	if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, end+2*time.Minute, false, func(context.Context) (bool, error) {
		p.mu.Lock()
		defer p.mu.Unlock()
		return !p.start.IsZero() && time.Since(p.start) > end, nil
	}); err != nil {
		t.Fatalf("the HPA never read the metrics: %v", err)
	}
	p.mu.Lock()
	reads := append([]metricRead(nil), p.reads...)
	p.mu.Unlock()

	syncs, err := groupSyncs(reads)
	if err != nil {
		t.Fatal(err)
	}
	port := autoscale.NewHPA(1, 12, behavior)
	compared, scaled := 0, 0
	for i := 0; i+1 < len(syncs); i++ {
		s, next := syncs[i], syncs[i+1]
		d := port.Sync(s.at, s.spec, s.metrics)
		kcm := next.spec // what the controller wrote, seen by the next sync
		if d.Desired != kcm {
			t.Errorf("sync %d at %v (spec %d, status %d, metrics %+v): kube-controller-manager chose %d, the port %d (proposal %d)",
				i, s.at.Round(time.Millisecond), s.spec, s.status, s.metrics, kcm, d.Desired, d.Proposal)
		}
		compared++
		if kcm != s.spec {
			scaled++
		}
	}
	t.Logf("%d syncs of kube-controller-manager compared, %d of them scaled", compared, scaled)
	if compared < 25 || scaled < 6 {
		t.Errorf("only %d syncs (%d scaling) were compared: want at least 25 and 6", compared, scaled)
	}
}

type kcmSync struct {
	at           time.Duration
	spec, status int32
	metrics      []autoscale.Metric
}

// groupSyncs pairs the two metric reads of each sync (read within 500 ms
// of each other, in spec order).
func groupSyncs(reads []metricRead) ([]kcmSync, error) {
	var out []kcmSync
	for i := 0; i < len(reads); {
		if i+1 >= len(reads) {
			break // the last sync, cut off
		}
		a, b := reads[i], reads[i+1]
		if a.metric != "requests_per_second" || b.metric != "requests_per_second_forecast" || b.at-a.at > 500*time.Millisecond {
			return nil, fmt.Errorf("read %d at %v (%s) and %d at %v (%s) are not one sync's two metrics", i, a.at, a.metric, i+1, b.at, b.metric)
		}
		if a.replicasErr != nil {
			return nil, fmt.Errorf("reading the Deployment at %v: %w", a.at, a.replicasErr)
		}
		if a.spec != b.spec || a.status != b.status {
			return nil, fmt.Errorf("the Deployment changed within the sync at %v: spec %d -> %d, status %d -> %d", a.at, a.spec, b.spec, a.status, b.status)
		}
		out = append(out, kcmSync{at: a.at, spec: a.spec, status: a.status, metrics: []autoscale.Metric{
			autoscale.ObjectMetric{TargetMilli: 50000, ValueMilli: a.valueMilli, StatusReplicas: a.status},
			autoscale.ObjectMetric{TargetMilli: 50000, ValueMilli: b.valueMilli, StatusReplicas: b.status},
		}})
		i += 2
	}
	return out, nil
}
