package router

import (
	"fmt"
	"maps"
	"net"
	"regexp"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// versionPattern is what a model version may look like in a path.
var versionPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// Validate returns every problem of the (defaulted) rules, each naming its
// field.
func (r *Rules) Validate() field.ErrorList {
	var errs field.ErrorList
	if r.APIVersion != APIVersion {
		errs = append(errs, field.NotSupported(field.NewPath("apiVersion"), r.APIVersion, []string{APIVersion}))
	}
	if r.Kind != Kind {
		errs = append(errs, field.NotSupported(field.NewPath("kind"), r.Kind, []string{Kind}))
	}
	backends := map[string]*Backend{}
	for i := range r.Backends {
		b := &r.Backends[i]
		p := field.NewPath("backends").Index(i)
		errs = append(errs, validateBackend(b, p)...)
		if _, dup := backends[b.Name]; dup {
			errs = append(errs, field.Duplicate(p.Child("name"), b.Name))
		}
		backends[b.Name] = b
	}
	if len(r.Routes) == 0 {
		errs = append(errs, field.Required(field.NewPath("routes"), "at least one route"))
	}
	names := map[string]bool{}
	catchAll := -1
	for i := range r.Routes {
		rt := &r.Routes[i]
		p := field.NewPath("routes").Index(i)
		if msgs := validation.IsDNS1123Label(rt.Name); len(msgs) > 0 {
			errs = append(errs, field.Invalid(p.Child("name"), rt.Name, strings.Join(msgs, "; ")))
		}
		if names[rt.Name] {
			errs = append(errs, field.Duplicate(p.Child("name"), rt.Name))
		}
		names[rt.Name] = true
		switch {
		case catchAll >= 0:
			errs = append(errs, field.Invalid(p, rt.Name, fmt.Sprintf("unreachable: route %d (%s) before it matches every request", catchAll, r.Routes[catchAll].Name)))
		default:
			for j := range i {
				if sameMatch(r.Routes[j].Match, rt.Match) {
					errs = append(errs, field.Invalid(p.Child("match"), rt.Name, fmt.Sprintf("unreachable: route %d (%s) has the same match", j, r.Routes[j].Name)))
					break
				}
			}
		}
		if rt.Match.isEmpty() && catchAll < 0 {
			catchAll = i
		}
		errs = append(errs, validateMatch(rt.Match, p.Child("match"))...)
		errs = append(errs, validateSplit(rt, backends, p)...)
		errs = append(errs, validateRateLimit(rt.RateLimit, p.Child("rateLimit"))...)
	}
	errs = append(errs, validateRateLimit(r.RateLimit, field.NewPath("rateLimit"))...)
	return errs
}

func validateBackend(b *Backend, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if msgs := validation.IsDNS1123Label(b.Name); len(msgs) > 0 {
		errs = append(errs, field.Invalid(p.Child("name"), b.Name, strings.Join(msgs, "; ")))
	}
	sources := 0
	if b.Service != nil {
		sources++
		if msgs := validation.IsDNS1035Label(b.Service.Name); len(msgs) > 0 {
			errs = append(errs, field.Invalid(p.Child("service", "name"), b.Service.Name, strings.Join(msgs, "; ")))
		}
		errs = append(errs, validateNamespace(b.Service.Namespace, p.Child("service", "namespace"))...)
	}
	if b.Pods != nil {
		sources++
		if len(b.Pods.Selector) == 0 {
			errs = append(errs, field.Required(p.Child("pods", "selector"), "a label selector (an empty one would pick every pod)"))
		}
		for k, v := range b.Pods.Selector {
			for _, msg := range append(validation.IsQualifiedName(k), validation.IsValidLabelValue(v)...) {
				errs = append(errs, field.Invalid(p.Child("pods", "selector").Key(k), v, msg))
			}
		}
		if b.Pods.Port < 1 || b.Pods.Port > 65535 {
			errs = append(errs, field.Invalid(p.Child("pods", "port"), b.Pods.Port, "must be 1..65535"))
		}
		errs = append(errs, validateNamespace(b.Pods.Namespace, p.Child("pods", "namespace"))...)
	}
	if len(b.Endpoints) > 0 {
		sources++
		for j, e := range b.Endpoints {
			host, port, err := net.SplitHostPort(e)
			if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
				errs = append(errs, field.Invalid(p.Child("endpoints").Index(j), e, "want host:port"))
			}
		}
	}
	if sources != 1 {
		errs = append(errs, field.Invalid(p, b.Name, fmt.Sprintf("set exactly one of service, pods and endpoints (%d set)", sources)))
	}
	if !strings.HasPrefix(b.MetricsPath, "/") {
		errs = append(errs, field.Invalid(p.Child("metricsPath"), b.MetricsPath, "must start with /"))
	}
	return errs
}

func validateNamespace(ns string, p *field.Path) field.ErrorList {
	if ns == "" {
		return field.ErrorList{field.Required(p, "no namespace and no default (--namespace)")}
	}
	if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
		return field.ErrorList{field.Invalid(p, ns, strings.Join(msgs, "; "))}
	}
	return nil
}

func validateMatch(m Match, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if m.Version != "" && !versionPattern.MatchString(m.Version) {
		errs = append(errs, field.Invalid(p.Child("version"), m.Version, "not a model version"))
	}
	for k := range m.Headers {
		if msgs := validation.IsHTTPHeaderName(k); len(msgs) > 0 {
			errs = append(errs, field.Invalid(p.Child("headers").Key(k), k, strings.Join(msgs, "; ")))
		}
	}
	for k := range m.Parameters {
		if k == "" {
			errs = append(errs, field.Invalid(p.Child("parameters").Key(k), k, "parameter name must not be empty"))
		}
	}
	return errs
}

func validateSplit(rt *Route, backends map[string]*Backend, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(rt.Backends) == 0 {
		errs = append(errs, field.Required(p.Child("backends"), "at least one backend"))
	}
	var sum int32
	seen := map[string]bool{}
	for j, wb := range rt.Backends {
		bp := p.Child("backends").Index(j)
		if _, ok := backends[wb.Backend]; !ok {
			errs = append(errs, field.NotFound(bp.Child("backend"), wb.Backend))
		}
		if key := wb.Backend + "/" + wb.Version; seen[key] {
			errs = append(errs, field.Duplicate(bp, key))
		} else {
			seen[key] = true
		}
		if wb.Version != "" && !versionPattern.MatchString(wb.Version) {
			errs = append(errs, field.Invalid(bp.Child("version"), wb.Version, "not a model version"))
		}
		if wb.Weight == nil {
			errs = append(errs, field.Required(bp.Child("weight"), "a route with several backends gives each a weight"))
			continue
		}
		if *wb.Weight < 0 || *wb.Weight > 100 {
			errs = append(errs, field.Invalid(bp.Child("weight"), *wb.Weight, "must be 0..100"))
		}
		sum += *wb.Weight
	}
	if len(rt.Backends) > 0 && sum != 100 {
		errs = append(errs, field.Invalid(p.Child("backends"), sum, "weights must sum to 100"))
	}
	if wf := rt.WeightsFrom; wf != nil {
		wp := p.Child("weightsFrom", "rollout")
		if msgs := validation.IsDNS1123Subdomain(wf.Rollout.Name); len(msgs) > 0 {
			errs = append(errs, field.Invalid(wp.Child("name"), wf.Rollout.Name, strings.Join(msgs, "; ")))
		}
		errs = append(errs, validateNamespace(wf.Rollout.Namespace, wp.Child("namespace"))...)
		ok := len(rt.Backends) == 2
		for _, wb := range rt.Backends {
			if b := backends[wb.Backend]; b != nil && b.Service == nil {
				ok = false
			}
		}
		if !ok {
			errs = append(errs, field.Invalid(p.Child("backends"), len(rt.Backends), "a route with weightsFrom splits across exactly two Service backends: the Rollout's stableService and canaryService"))
		}
	}
	return errs
}

func validateRateLimit(l *RateLimit, p *field.Path) field.ErrorList {
	if l == nil {
		return nil
	}
	var errs field.ErrorList
	if !(l.RequestsPerSecond > 0) {
		errs = append(errs, field.Invalid(p.Child("requestsPerSecond"), l.RequestsPerSecond, "must be positive"))
	}
	if l.Burst < 1 {
		errs = append(errs, field.Invalid(p.Child("burst"), l.Burst, "must be at least 1"))
	}
	return errs
}

func (m Match) isEmpty() bool {
	return m.Model == "" && m.Version == "" && len(m.Headers) == 0 && len(m.Parameters) == 0
}

// sameMatch: a later route with the same conditions can never match.
func sameMatch(a, b Match) bool {
	return a.Model == b.Model && a.Version == b.Version &&
		maps.EqualFunc(lowerKeys(a.Headers), lowerKeys(b.Headers), func(x, y string) bool { return x == y }) &&
		maps.Equal(a.Parameters, b.Parameters)
}

func lowerKeys(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[strings.ToLower(k)] = v
	}
	return out
}
