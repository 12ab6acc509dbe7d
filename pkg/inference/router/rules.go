package router

import (
	"fmt"

	"sigs.k8s.io/yaml"
)

// APIVersion and Kind identify a rules file.
const (
	APIVersion = "router.gpufleet.io/v1alpha1"
	Kind       = "RoutingRules"
)

// Rules is the router's configuration: the backends it forwards to and the
// ordered routes that pick one for each request. The first route whose
// match holds serves the request; a route without a match is the default
// and must come last.
type Rules struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// Backends are the model Deployments, each found through a Service's
	// EndpointSlices, a pod selector or fixed addresses.
	Backends []Backend `json:"backends"`
	// Routes are tried in order.
	Routes []Route `json:"routes"`
	// RateLimit bounds every request the router takes (the Ingress-wide
	// limit); a route's own limit applies on top.
	RateLimit *RateLimit `json:"rateLimit,omitempty"`
}

// Backend is a set of interchangeable model server pods. Exactly one of
// Service, Pods and Endpoints says where they are.
type Backend struct {
	Name string `json:"name"`
	// Service: the ready endpoints of this Service's EndpointSlices.
	Service *ServiceRef `json:"service,omitempty"`
	// Pods: the ready pods a label selector picks (for clusters whose pod
	// addresses EndpointSlices cannot hold, e.g. loopback pods).
	Pods *PodSelector `json:"pods,omitempty"`
	// Endpoints: fixed host:port addresses, always taken as ready.
	Endpoints []string `json:"endpoints,omitempty"`
	// MetricsPath is where the pods serve inference_queue_depth (default
	// /metrics, on the serving port).
	MetricsPath string `json:"metricsPath,omitempty"`
}

// ServiceRef names a Service and the port of its EndpointSlices to use.
type ServiceRef struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
	// Port is the EndpointSlice port's name, or empty for the only port.
	Port string `json:"port,omitempty"`
}

// PodSelector selects pods by label and names their serving port.
type PodSelector struct {
	Namespace string            `json:"namespace,omitempty"`
	Selector  map[string]string `json:"selector"`
	Port      int32             `json:"port"`
}

// Route matches requests and splits them across backends by weight.
type Route struct {
	Name string `json:"name"`
	// Match is what a request must have; empty matches every request.
	Match Match `json:"match,omitempty"`
	// Backends share the route's requests by weight (percent, summing to
	// 100; a single backend may leave it out).
	Backends []WeightedBackend `json:"backends"`
	// WeightsFrom lets an Argo Rollout set the split (rollout.go).
	WeightsFrom *WeightsFrom `json:"weightsFrom,omitempty"`
	// RateLimit bounds this route's requests.
	RateLimit *RateLimit `json:"rateLimit,omitempty"`
}

// Match holds conditions that must all hold.
type Match struct {
	// Model is the model name in the request path.
	Model string `json:"model,omitempty"`
	// Version is the version in the path; "" matches requests naming any
	// version or none.
	Version string `json:"version,omitempty"`
	// Headers must be present with these values (names case-insensitive).
	Headers map[string]string `json:"headers,omitempty"`
	// Parameters are top-level inference request parameters, e.g.
	// propertyType: commercial; numbers and booleans compare by their JSON
	// text. Only inference requests carry parameters.
	Parameters map[string]string `json:"parameters,omitempty"`
}

// WeightedBackend is one share of a route.
type WeightedBackend struct {
	Backend string `json:"backend"`
	Weight  *int32 `json:"weight,omitempty"`
	// Version, if set, is the model version requested from this backend:
	// the path is rewritten to /v2/models/{model}/versions/{version}/...
	Version string `json:"version,omitempty"`
}

// WeightsFrom names an Argo Rollout whose canary weight the route applies:
// the backend whose Service is the Rollout's canaryService gets the
// canary weight, the one whose Service is its stableService the rest.
type WeightsFrom struct {
	Rollout RolloutRef `json:"rollout"`
}

// RolloutRef names an argoproj.io/v1alpha1 Rollout.
type RolloutRef struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
}

// RateLimit is a token bucket: RequestsPerSecond on average, Burst at once
// (default RequestsPerSecond, at least 1).
type RateLimit struct {
	RequestsPerSecond float64 `json:"requestsPerSecond"`
	Burst             int     `json:"burst,omitempty"`
}

// Decode reads rules strictly: unknown or duplicate fields are errors, and
// so is every problem Validate finds. namespace is the default namespace of
// Services, pods and Rollouts that name none.
func Decode(data []byte, namespace string) (*Rules, error) {
	r := &Rules{}
	if err := yaml.UnmarshalStrict(data, r); err != nil {
		return nil, fmt.Errorf("decoding routing rules: %w", err)
	}
	r.setDefaults(namespace)
	if errs := r.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("invalid routing rules: %w", errs.ToAggregate())
	}
	return r, nil
}

// setDefaults fills namespaces, ports, weights and burst sizes.
func (r *Rules) setDefaults(namespace string) {
	for i := range r.Backends {
		b := &r.Backends[i]
		if b.Service != nil && b.Service.Namespace == "" {
			b.Service.Namespace = namespace
		}
		if b.Pods != nil && b.Pods.Namespace == "" {
			b.Pods.Namespace = namespace
		}
		if b.MetricsPath == "" {
			b.MetricsPath = "/metrics"
		}
	}
	for i := range r.Routes {
		rt := &r.Routes[i]
		if len(rt.Backends) == 1 && rt.Backends[0].Weight == nil {
			w := int32(100)
			rt.Backends[0].Weight = &w
		}
		if rt.WeightsFrom != nil && rt.WeightsFrom.Rollout.Namespace == "" {
			rt.WeightsFrom.Rollout.Namespace = namespace
		}
		defaultBurst(rt.RateLimit)
	}
	defaultBurst(r.RateLimit)
}

func defaultBurst(l *RateLimit) {
	if l != nil && l.Burst == 0 {
		l.Burst = max(1, int(l.RequestsPerSecond))
	}
}
