package router

import (
	"context"
	"fmt"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
)

// RolloutGVR is Argo Rollouts' Rollout resource.
var RolloutGVR = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "rollouts"}

// rolloutWatch applies an Argo Rollout's canary weight to the routes that
// name it in weightsFrom. The Rollout uses the canary strategy with
// stableService and canaryService and no trafficRouting: Argo then scales
// the canary ReplicaSet step by step, and the router sends the step's
// setWeight percent of the route's requests to the canary Service's pods,
// the rest to the stable Service's, whatever the replica counts.
type rolloutWatch struct {
	ref RolloutRef
	r   *Router

	mu       sync.Mutex
	attached []attachment
	last     *rolloutWeight
	cancel   context.CancelFunc
}

type attachment struct {
	rt       *route
	services []string // per target of rt, the backend's Service name
}

type rolloutWeight struct {
	canary               int32
	stableSvc, canarySvc string
}

func newRolloutWatch(ref RolloutRef, r *Router) *rolloutWatch {
	return &rolloutWatch{ref: ref, r: r}
}

// reset forgets the routes of the rules being replaced.
func (w *rolloutWatch) reset() {
	w.mu.Lock()
	w.attached = nil
	w.mu.Unlock()
}

// attach makes rt follow the Rollout; the latest weight applies at once.
func (w *rolloutWatch) attach(rt *route, services []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	a := attachment{rt: rt, services: services}
	w.attached = append(w.attached, a)
	if w.last != nil {
		w.apply(a, *w.last)
	}
}

func (w *rolloutWatch) start(ctx context.Context, client dynamic.Interface) {
	if client == nil {
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	w.mu.Lock()
	w.cancel = cancel
	w.mu.Unlock()
	f := dynamicinformer.NewFilteredDynamicSharedInformerFactory(client, 0, w.ref.Namespace, func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", w.ref.Name).String()
	})
	inf := f.ForResource(RolloutGVR).Informer()
	update := func(obj any) {
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			return
		}
		rw, err := canaryWeight(u)
		if err != nil {
			logger(ctx).Info("Rollout not applied; the routes keep their weights", "rollout", w.ref.Namespace+"/"+w.ref.Name, "err", err)
			return
		}
		w.mu.Lock()
		w.last = &rw
		for _, a := range w.attached {
			w.apply(a, rw)
		}
		w.mu.Unlock()
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    update,
		UpdateFunc: func(_, obj any) { update(obj) },
	})
	f.Start(ctx.Done())
}

func (w *rolloutWatch) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cancel != nil {
		w.cancel()
		w.cancel = nil
	}
}

// apply sets a route's weights; the caller holds w.mu.
func (w *rolloutWatch) apply(a attachment, rw rolloutWeight) {
	weights := make([]int32, len(a.services))
	found := 0
	for i, svc := range a.services {
		switch svc {
		case rw.canarySvc:
			weights[i] = rw.canary
			found++
		case rw.stableSvc:
			weights[i] = 100 - rw.canary
			found++
		}
	}
	if found != 2 {
		logger(context.Background()).Info("Rollout's services are not the route's backends; weights unchanged",
			"route", a.rt.name, "stableService", rw.stableSvc, "canaryService", rw.canarySvc, "backendServices", a.services)
		return
	}
	a.rt.split.setWeights(weights)
	w.r.publishWeights(a.rt)
}

// canaryWeight is the share Argo Rollouts wants on the canary now, as its
// own controller computes it: 0 once the canary is promoted (the stable
// ReplicaSet is the current one) or aborted; else the status' canary
// weight where a traffic router reported one; else the setWeight of the
// current step or the nearest one before it; 100 past the last step.
func canaryWeight(u *unstructured.Unstructured) (rolloutWeight, error) {
	var rw rolloutWeight
	canary, found, _ := unstructured.NestedMap(u.Object, "spec", "strategy", "canary")
	if !found {
		return rw, fmt.Errorf("not a canary Rollout (spec.strategy.canary missing)")
	}
	rw.stableSvc, _, _ = unstructured.NestedString(canary, "stableService")
	rw.canarySvc, _, _ = unstructured.NestedString(canary, "canaryService")
	if rw.stableSvc == "" || rw.canarySvc == "" {
		return rw, fmt.Errorf("spec.strategy.canary needs stableService and canaryService")
	}
	stable, _, _ := unstructured.NestedString(u.Object, "status", "stableRS")
	current, _, _ := unstructured.NestedString(u.Object, "status", "currentPodHash")
	if aborted, _, _ := unstructured.NestedBool(u.Object, "status", "abort"); aborted || (stable != "" && stable == current) {
		return rw, nil
	}
	if w, found, _ := unstructured.NestedInt64(u.Object, "status", "canary", "weights", "canary", "weight"); found {
		rw.canary = int32(min(max(w, 0), 100))
		return rw, nil
	}
	steps, _, _ := unstructured.NestedSlice(canary, "steps")
	idx, found, _ := unstructured.NestedInt64(u.Object, "status", "currentStepIndex")
	if !found {
		idx = 0
	}
	if int(idx) >= len(steps) {
		rw.canary = 100
		return rw, nil
	}
	for i := int(idx); i >= 0; i-- {
		step, ok := steps[i].(map[string]any)
		if !ok {
			continue
		}
		if w, found, _ := unstructured.NestedInt64(step, "setWeight"); found {
			rw.canary = int32(min(max(w, 0), 100))
			return rw, nil
		}
	}
	return rw, nil
}
