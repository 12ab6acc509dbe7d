package sim

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/klog/v2"

	"github.com/gpufleet/gpufleet/pkg/plugins/gpupack"
)

// Policies maps the simulator's policy names (the FGD paper's) to gpupack
// strategies.
var Policies = map[string]string{
	"random":        gpupack.StrategyRandom,
	"dotprod":       gpupack.StrategyDotProduct,
	"gpupacking":    gpupack.StrategyGPUPacking,
	"gpuclustering": gpupack.StrategyGPUClustering,
	"bestfit":       gpupack.StrategyBestFit,
	"fgd":           gpupack.StrategyFGD,
	"gpufleet":      gpupack.StrategyGPUFleet,
}

// PolicyNames lists the policies, sorted.
func PolicyNames() []string {
	out := make([]string, 0, len(Policies))
	for k := range Policies {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// GridPoints is the arrived-workload grid: 0..130 % of the cluster's GPUs.
const GridPoints = 131

// Result is one run of the paper's experiment (the gpusim --json contract).
type Result struct {
	Policy        string    `json:"policy"`
	Seed          uint64    `json:"seed"`
	TotalGPUs     int       `json:"total_gpus"`
	AllocPct      []float64 `json:"alloc_pct"`
	FragRatioPct  []float64 `json:"frag_ratio_pct"`
	PodsScheduled int       `json:"pods_scheduled"`
	PodsFailed    int       `json:"pods_failed"`
	WallSeconds   float64   `json:"wall_seconds"`
}

// event is the cluster after one pod arrived (placed or not).
type event struct {
	arrivedMilli int64
	usedMilli    int64
	fragRatioPct float64
}

// Experiment runs the FGD paper's protocol: the trace's pods in an order
// shuffled by seed, then clones drawn with replacement appended until the
// GPU request reaches inflation x the cluster's GPUs; every pod arrives once
// and never leaves; after each pod, the GPU allocation and the
// fragmentation ratio (of the trace's typical pods) are recorded against
// the GPU request arrived so far, failed pods included.
func Experiment(ctx context.Context, nodes []Node, pods []Pod, policy string, seed uint64, inflation float64) (*Result, error) {
	strategy, ok := Policies[policy]
	if !ok {
		return nil, fmt.Errorf("unknown policy %q: use one of %s", policy, strings.Join(PolicyNames(), ", "))
	}
	if inflation <= 0 || inflation > 100 {
		return nil, fmt.Errorf("inflation %v: want a factor of the cluster's GPUs such as 1.3", inflation)
	}
	start := time.Now()
	rng := rand.New(rand.NewPCG(seed, 0x6770756673696d)) // "gpufsim"
	byName := slices.Clone(pods)
	slices.SortFunc(byName, func(a, b Pod) int { return strings.Compare(a.Name, b.Name) })
	order := Inflate(byName, nodes, inflation, rng)

	s, err := NewScheduler(ctx, nodes, strategy, byName, rng)
	if err != nil {
		return nil, err
	}
	res := &Result{Policy: policy, Seed: seed}
	for _, n := range nodes {
		res.TotalGPUs += n.GPUs
	}
	if res.TotalGPUs == 0 {
		return nil, fmt.Errorf("the cluster has no GPUs")
	}
	acct := newAccount(klog.FromContext(ctx), s)
	events := make([]event, 0, len(order))
	var arrived int64
	for i, p := range order {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		arrived += p.TotalGPUMilli()
		placed, st := s.Schedule(ctx, PodObject(p, "pod-"+strconv.Itoa(i)))
		switch {
		case st.IsSuccess():
			res.PodsScheduled++
			acct.update(placed.Node)
		case st.IsRejected():
			res.PodsFailed++
		default:
			return nil, fmt.Errorf("scheduling pod %s: %w", p.Name, st.AsError())
		}
		events = append(events, event{arrivedMilli: arrived, usedMilli: acct.used, fragRatioPct: acct.fragRatioPct()})
	}
	res.AllocPct, res.FragRatioPct = curves(events, res.TotalGPUs)
	res.WallSeconds = time.Since(start).Seconds()
	return res, nil
}

// Inflate returns the pods (sorted by name) shuffled by rng, followed by
// clones drawn uniformly with replacement while the next clone's per-GPU
// share keeps the total GPU request within inflation x the cluster's GPUs.
// (The paper's simulator tests the clone's per-GPU share and adds its total:
// kept for the same workloads.)
func Inflate(pods []Pod, nodes []Node, inflation float64, rng *rand.Rand) []Pod {
	order := slices.Clone(pods)
	rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	var capacity, total int64
	for _, n := range nodes {
		capacity += int64(n.GPUs) * gpupack.MilliPerGPU
	}
	for _, p := range pods {
		total += p.TotalGPUMilli()
	}
	limit := inflation * float64(capacity)
	for i := 0; float64(total) < limit; i++ {
		c := pods[rng.IntN(len(pods))]
		if float64(total+c.PerGPUMilli()) > limit {
			break
		}
		total += c.TotalGPUMilli()
		c.Name = fmt.Sprintf("%s-tuned-%d", c.Name, i)
		order = append(order, c)
	}
	return order
}

// account keeps the cluster's allocated GPU, idle GPU and fragmentation,
// updating only the node that changed.
type account struct {
	logger  klog.Logger
	s       *Scheduler
	typical []gpupack.TypicalPod
	index   map[string]int
	frag    []float64
	idle    []int64
	cap     []int64
	used    int64
	fragSum float64
	idleSum int64
}

func newAccount(logger klog.Logger, s *Scheduler) *account {
	a := &account{logger: logger, s: s, typical: s.Plugin().Workload().Typical(), index: map[string]int{}}
	for i, ni := range s.Nodes() {
		a.index[ni.Node().Name] = i
		n := s.Plugin().Ledger().Node(logger, ni)
		a.cap = append(a.cap, n.Capacity())
		a.idle = append(a.idle, n.Idle())
		a.frag = append(a.frag, gpupack.Fragmentation(n, a.typical))
		a.used += n.Capacity() - n.Idle()
		a.idleSum += n.Idle()
		a.fragSum += a.frag[i]
	}
	return a
}

func (a *account) update(node string) {
	i := a.index[node]
	n := a.s.Plugin().Ledger().Node(a.logger, a.s.Nodes()[i])
	idle, frag := n.Idle(), gpupack.Fragmentation(n, a.typical)
	a.used += a.idle[i] - idle
	a.idleSum += idle - a.idle[i]
	a.fragSum += frag - a.frag[i]
	a.idle[i], a.frag[i] = idle, frag
}

// fragRatioPct is fragmented over idle GPU, in percent with two decimals
// (as the paper's simulator logs it).
func (a *account) fragRatioPct() float64 {
	if a.idleSum <= 0 {
		return 0
	}
	return math.RoundToEven(100*a.fragSum/float64(a.idleSum)*100) / 100
}

// curves turns the events into the paper's discrete curves: for each
// arrived percentage x (rounded half to even), the mean over the events at
// x, else over those within x±1; a point no event reaches repeats the
// previous one.
func curves(events []event, totalGPUs int) (alloc, frag []float64) {
	type acc struct {
		n           int
		alloc, frag float64
	}
	var at [GridPoints + 1]acc
	for _, e := range events {
		x := int(math.RoundToEven(float64(e.arrivedMilli) / float64(totalGPUs) / 10))
		if x < 0 || x > GridPoints {
			continue
		}
		at[x].n++
		at[x].alloc += math.RoundToEven(float64(e.usedMilli)/float64(totalGPUs)/10*100) / 100
		at[x].frag += e.fragRatioPct
	}
	alloc, frag = make([]float64, GridPoints), make([]float64, GridPoints)
	for x := range GridPoints {
		var sum acc
		if at[x].n > 0 {
			sum = at[x]
		} else {
			for y := max(x-1, 0); y <= x+1; y++ {
				sum.n += at[y].n
				sum.alloc += at[y].alloc
				sum.frag += at[y].frag
			}
		}
		switch {
		case sum.n > 0:
			alloc[x] = round2(sum.alloc / float64(sum.n))
			frag[x] = round2(sum.frag / float64(sum.n))
		case x > 0:
			alloc[x], frag[x] = alloc[x-1], frag[x-1]
		}
	}
	return alloc, frag
}

func round2(v float64) float64 { return math.RoundToEven(v*100) / 100 }
