package router

import (
	"encoding/json"
	"fmt"
	"slices"
)

// table is the compiled form of a Rules: what serves requests. It is
// replaced whole on reload; pools and their discovery carry over for
// backends whose source did not change, so that in-flight counts survive.
type table struct {
	routes []*route
	global *tokenBucket
}

// route is a compiled Route.
type route struct {
	name       string
	match      Match
	modelLabel string
	split      *split
	limiter    *tokenBucket
}

// find returns the first route matching rq, nil if none does.
func (t *table) find(rq *request) (*route, error) {
	for _, rt := range t.routes {
		ok, err := rt.match.matches(rq)
		if err != nil {
			return nil, err
		}
		if ok {
			return rt, nil
		}
	}
	return nil, nil
}

// sourceKey identifies where a backend's endpoints come from.
func sourceKey(b *Backend) string {
	src, _ := json.Marshal(struct {
		S *ServiceRef
		P *PodSelector
		E []string
		M string
	}{b.Service, b.Pods, b.Endpoints, b.MetricsPath})
	return b.Name + "=" + string(src)
}

// SetRules validates rules and puts them in force at once. Backends whose
// source is unchanged keep their pools; new ones start discovery (if Run
// runs) and are empty until it lists them.
func (r *Router) SetRules(rules *Rules) error {
	if errs := rules.Validate(); len(errs) > 0 {
		return fmt.Errorf("invalid routing rules: %w", errs.ToAggregate())
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	pools := map[string]*Pool{}
	keep := map[string]bool{}
	for i := range rules.Backends {
		b := &rules.Backends[i]
		key := sourceKey(b)
		keep[key] = true
		s, ok := r.sources[key]
		if !ok {
			s = newSource(b, NewPool(b.Name, r.cfg.Policy))
			s.pool.onChange = r.endpointsChanged
			r.sources[key] = s
			if r.runCtx != nil {
				s.start(r.runCtx, r.cfg.Client)
			}
		}
		pools[b.Name] = s.pool
	}
	for key, s := range r.sources {
		if !keep[key] {
			s.stop()
			delete(r.sources, key)
			r.metrics.endpoints.DeleteLabelValues(s.pool.name)
		}
	}
	t := &table{}
	if rules.RateLimit != nil {
		t.global = newTokenBucket(*rules.RateLimit, r.cfg.Now)
	}
	services := map[string]string{}
	for _, b := range rules.Backends {
		if b.Service != nil {
			services[b.Name] = b.Service.Name
		}
	}
	r.metrics.weight.Reset()
	for _, w := range r.rollouts {
		w.reset()
	}
	wantRollouts := map[string]bool{}
	for _, rr := range rules.Routes {
		rt := &route{name: rr.Name, match: rr.Match, modelLabel: rr.Match.Model, split: &split{}}
		if rt.modelLabel == "" {
			rt.modelLabel = otherModel
		}
		weights := make([]int32, 0, len(rr.Backends))
		for _, wb := range rr.Backends {
			rt.split.targets = append(rt.split.targets, &target{backend: wb.Backend, pool: pools[wb.Backend], version: wb.Version,
				requests: r.metrics.backendReqs.WithLabelValues(rr.Name, wb.Backend, wb.Version)})
			weights = append(weights, *wb.Weight)
		}
		rt.split.setWeights(weights)
		r.publishWeights(rt)
		if rr.RateLimit != nil {
			rt.limiter = newTokenBucket(*rr.RateLimit, r.cfg.Now)
		}
		if rr.WeightsFrom != nil {
			ref := rr.WeightsFrom.Rollout
			key := ref.Namespace + "/" + ref.Name
			wantRollouts[key] = true
			w, ok := r.rollouts[key]
			if !ok {
				w = newRolloutWatch(ref, r)
				r.rollouts[key] = w
				if r.runCtx != nil {
					w.start(r.runCtx, r.cfg.Dynamic)
				}
			}
			w.attach(rt, slices.Collect(func(yield func(string) bool) {
				for _, wb := range rr.Backends {
					if !yield(services[wb.Backend]) {
						return
					}
				}
			}))
		}
		t.routes = append(t.routes, rt)
	}
	for key, w := range r.rollouts {
		if !wantRollouts[key] {
			w.stop()
			delete(r.rollouts, key)
		}
	}
	r.table.Store(t)
	r.updateScrapeTargets()
	return nil
}

// publishWeights exports a route's current split.
func (r *Router) publishWeights(rt *route) {
	w := *rt.split.weights.Load()
	for i, t := range rt.split.targets {
		r.metrics.weight.WithLabelValues(rt.name, t.backend, t.version).Set(float64(w[i]))
	}
}

// endpointsChanged follows a pool's change: metrics and scrape targets.
func (r *Router) endpointsChanged() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.updateScrapeTargets()
}

// updateScrapeTargets points the queue-depth scraper at every endpoint of
// every backend; the caller holds r.mu.
func (r *Router) updateScrapeTargets() {
	var all []scrapeTarget
	for _, s := range r.sources {
		eps := s.pool.Endpoints()
		r.metrics.endpoints.WithLabelValues(s.pool.name).Set(float64(len(eps)))
		for _, e := range eps {
			all = append(all, scrapeTarget{ep: e, path: s.backend.MetricsPath})
		}
	}
	if r.queues != nil {
		r.queues.setTargets(all)
	}
}
