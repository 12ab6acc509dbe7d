// Package promsource is the optional Prometheus backend of the gpufleet
// metrics adapter: it implements source.Source with instant queries to a
// Prometheus server that already scrapes the inference pods and the
// gpu-agents.
//
// # Queries
//
// Each PodValues or NodeValues call sends one instant query, POSTed as a
// form to /api/v1/query so that long lists of pods fit, e.g.
//
//	sum by (namespace, pod) (rate(inference_requests_total{namespace="ns",pod=~"a|b|c",model="m"}[1m]))
//	avg by (namespace, pod) (gpufleet_pod_gpu_utilization_ratio{namespace=~"ns1|ns2",pod=~"a|b"})
//	avg by (node) (gpufleet_gpu_utilization_ratio{node=~"n1|n2"})
//
// Rate metrics are rate() over the rate window (default 1m) summed over the
// matching series; Sum metrics sum, and Mean metrics average, the gauges.
// Pods that span namespaces are asked for with a regex on each label and
// told apart by grouping on both; results for objects not asked for are
// ignored. ScopePodOnAgent series, exported by the gpu-agent, carry the
// workload pod's namespace and pod labels (the agents must be scraped with
// honor_labels: true), so they are queried like the pods' own series. The
// label names are options (default "namespace", "pod" and "node").
//
// Names and values are regex-quoted where a regex matches them and always
// written as escaped PromQL string literals; a value that is not UTF-8 is an
// error.
//
// # Selectors
//
// The series selector of the custom metrics API (a labels.Selector) becomes
// label matchers: = and == become =, != stays, in and notin become =~ and
// !~ over an alternation, exists becomes =~".+" and ! (does not exist)
// becomes ="". Prometheus cannot tell a missing label from an empty one, so
// key="" also matches series without the label. gt and lt, label names that
// are not Prometheus label names (such as app.kubernetes.io/name), names
// with the reserved "__" prefix and the namespace, pod and node labels,
// which the adapter sets, are errors naming the requirement. A selector
// that selects nothing (labels.Nothing()) sends no query.
//
// # Results
//
// An object gets a value when Prometheus returns a sample for its group and
// the value is finite: objects Prometheus does not know, series that have
// gone stale in Prometheus, and NaN or infinite results have ok false.
// Sample.Timestamp is the result's timestamp, which Prometheus sets to the
// evaluation time of the instant query; Sample.Window is the rate window for
// Rate metrics and zero for gauges. Note that rate() divides by the whole
// window, so a counter younger than the window yields a rate that is too
// low until the window fills.
//
// # Errors
//
// Every query is bounded by the query timeout (default 5s), both on the
// client and, through the timeout parameter, on the server, and by the
// caller's context. A transport error, an HTTP error, a Prometheus error
// response, a timeout, a malformed body or a result that is not a vector
// fails the whole call with an error that names the server (without its
// password) and the query (shortened when long).
package promsource
