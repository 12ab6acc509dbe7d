package sim

import (
	"container/heap"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
)

// ReplayResult is a replay of arrivals and departures in trace time.
type ReplayResult struct {
	Mode      string `json:"mode"`
	Policy    string `json:"policy"`
	Seed      uint64 `json:"seed"`
	TotalGPUs int    `json:"total_gpus"`
	// Samples are taken every SampleSeconds of trace time.
	SampleSeconds int64          `json:"sample_seconds"`
	Samples       []ReplaySample `json:"samples"`
	PodsArrived   int            `json:"pods_arrived"`
	PodsScheduled int            `json:"pods_scheduled"`
	// PodsAbandoned reached their deletion time while still pending.
	PodsAbandoned int `json:"pods_abandoned"`
	// PodsPendingAtEnd were still waiting when the trace ended.
	PodsPendingAtEnd int     `json:"pods_pending_at_end"`
	MaxPending       int     `json:"max_pending"`
	MeanWaitSeconds  float64 `json:"mean_wait_seconds"`
	MeanAllocPct     float64 `json:"mean_alloc_pct"`
	WallSeconds      float64 `json:"wall_seconds"`
}

// ReplaySample is the cluster at one moment of trace time.
type ReplaySample struct {
	Time     int64   `json:"t"`
	AllocPct float64 `json:"alloc_pct"`
	Running  int     `json:"running"`
	Pending  int     `json:"pending"`
}

// RetriesPerDeparture bounds how many pending pods, oldest first, are tried
// again when a pod leaves (a scheduler's queue does not retry everything on
// every event either).
const RetriesPerDeparture = 64

type departure struct {
	at  int64
	pod int
}

type departures []departure

func (d departures) Len() int { return len(d) }
func (d departures) Less(i, j int) bool {
	return d[i].at < d[j].at || d[i].at == d[j].at && d[i].pod < d[j].pod
}
func (d departures) Swap(i, j int) { d[i], d[j] = d[j], d[i] }
func (d *departures) Push(x any)   { *d = append(*d, x.(departure)) }
func (d *departures) Pop() any {
	old := *d
	x := old[len(old)-1]
	*d = old[:len(old)-1]
	return x
}

// Replay plays the trace in time: each pod arrives at its creation time and
// runs for its trace duration (deletion - creation) from the moment it is
// placed; a pod that does not fit waits, oldest first, and is retried when
// pods leave (up to RetriesPerDeparture per departure); a pod still waiting
// at its deletion time is abandoned. The typical pods are those of the whole
// trace. Samples every sampleSeconds of trace time report allocation,
// running and pending pods.
func Replay(ctx context.Context, nodes []Node, pods []Pod, policy string, seed uint64, sampleSeconds int64) (*ReplayResult, error) {
	strategy, ok := Policies[policy]
	if !ok {
		return nil, fmt.Errorf("unknown policy %q: use one of %s", policy, strings.Join(PolicyNames(), ", "))
	}
	if sampleSeconds <= 0 {
		return nil, fmt.Errorf("sample interval %d s: want a positive number of seconds", sampleSeconds)
	}
	start := time.Now()
	order := slices.Clone(pods)
	slices.SortStableFunc(order, func(a, b Pod) int { return int(a.CreationTime - b.CreationTime) })
	rng := rand.New(rand.NewPCG(seed, 0x6770756673696d))
	s, err := NewScheduler(ctx, nodes, strategy, order, rng)
	if err != nil {
		return nil, err
	}
	res := &ReplayResult{Mode: "replay", Policy: policy, Seed: seed, SampleSeconds: sampleSeconds}
	for _, n := range nodes {
		res.TotalGPUs += n.GPUs
	}
	if res.TotalGPUs == 0 {
		return nil, fmt.Errorf("the cluster has no GPUs")
	}
	acct := newAccount(klog.FromContext(ctx), s)
	objs := make([]*corev1.Pod, len(order))
	placedOn := make([]string, len(order))
	var pending []int
	var leaving departures
	var waitSum float64
	running := 0

	place := func(i int, now int64) bool {
		if objs[i] == nil {
			objs[i] = PodObject(order[i], "pod-"+strconv.Itoa(i))
		}
		p, st := s.Schedule(ctx, objs[i])
		if !st.IsSuccess() {
			return false
		}
		placedOn[i] = p.Node
		acct.update(p.Node)
		running++
		res.PodsScheduled++
		waitSum += float64(now - order[i].CreationTime)
		if d := order[i].DeletionTime; d > 0 {
			heap.Push(&leaving, departure{at: now + d - order[i].CreationTime, pod: i})
		}
		return true
	}
	retry := func(now int64) {
		tried, kept := 0, pending[:0]
		for _, i := range pending {
			switch {
			case order[i].DeletionTime > 0 && order[i].DeletionTime <= now:
				res.PodsAbandoned++
			case tried < RetriesPerDeparture:
				tried++
				if !place(i, now) {
					kept = append(kept, i)
				}
			default:
				kept = append(kept, i)
			}
		}
		pending = kept
	}
	var allocSum float64
	nextSample := int64(0)
	if len(order) > 0 {
		nextSample = order[0].CreationTime
	}
	sample := func(upTo int64) {
		for nextSample <= upTo {
			alloc := 100 * float64(acct.used) / float64(res.TotalGPUs*1000)
			res.Samples = append(res.Samples, ReplaySample{Time: nextSample, AllocPct: round2(alloc), Running: running, Pending: len(pending)})
			allocSum += alloc
			nextSample += sampleSeconds
		}
	}
	next := 0
	for next < len(order) || leaving.Len() > 0 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// Departures before arrivals at the same second.
		if leaving.Len() > 0 && (next >= len(order) || leaving[0].at <= order[next].CreationTime) {
			d := heap.Pop(&leaving).(departure)
			sample(d.at - 1)
			if err := s.Remove(objs[d.pod], placedOn[d.pod]); err != nil {
				return nil, fmt.Errorf("removing pod %s: %w", order[d.pod].Name, err)
			}
			acct.update(placedOn[d.pod])
			running--
			retry(d.at)
			continue
		}
		now := order[next].CreationTime
		sample(now - 1)
		res.PodsArrived++
		if len(pending) > 0 || !place(next, now) {
			pending = append(pending, next)
			if len(pending) == 1 {
				retry(now)
			}
		}
		res.MaxPending = max(res.MaxPending, len(pending))
		next++
	}
	if len(res.Samples) > 0 {
		res.MeanAllocPct = round2(allocSum / float64(len(res.Samples)))
	}
	res.PodsPendingAtEnd = len(pending)
	if res.PodsScheduled > 0 {
		res.MeanWaitSeconds = round2(waitSum / float64(res.PodsScheduled))
	}
	res.WallSeconds = time.Since(start).Seconds()
	return res, nil
}
