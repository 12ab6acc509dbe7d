// Package scrape is the embedded metrics source of the gpufleet metrics
// adapter: it scrapes pods' Prometheus /metrics endpoints every second and
// answers "what is this pod's value, or rate, now".
//
// # Scheduling
//
// A Scraper holds a target set that SetTargets replaces at any time. While
// Run runs, each target has one loop that scrapes it once per interval
// (default 1s) at a fixed offset within the interval, derived from a hash of
// its key and bounded by the jitter option (default the whole interval), so
// that targets do not all fire together and each target's scrapes stay one
// interval apart. A scrape holds one of a bounded number of concurrency
// slots (default 64) and is abandoned at the per-target timeout (default
// 800ms, at most the interval). Because a target's scrape runs inside its
// own loop, a slow or dead target never delays the others and never has two
// scrapes in flight: the ticks its scrape overlaps are skipped. ScrapeOnce
// scrapes every target once, for tests and warm-up.
//
// Responses are parsed according to their Content-Type: Prometheus text
// 0.0.4 (also assumed for a missing or unknown type) by expfmt's text
// parser, and OpenMetrics text after a rewrite into that format (timestamps
// and exemplars are dropped; counters are stored under their "_total" sample
// names). Only the metric names listed with WithMetrics are kept, dropped
// already while the body is read; histograms and summaries keep only their
// "_sum" and "_count". Bodies are size-limited (default 10 MiB). A bad body,
// an HTTP error or a timeout fails that target's scrape only; the error is
// recorded in its TargetStatus and counted in the self-metrics (Collector).
//
// # Storage
//
// The Store keeps, per (target, metric name, label set), a ring of the
// newest samples, each a (scrape start time, value, kind) triple. The ring
// length is fixed at ceil(rate window / interval) + 2 (default 12), so a
// series never grows. A target holds at most a configured number of series
// (default 10,000); samples of further series are dropped and counted in
// gpufleet_adapter_series_dropped_total. A series absent from the
// expositions for longer than the rate window is forgotten.
//
// # Staleness
//
// A target serves no value at all when its latest scrape failed, when its
// latest successful scrape is older than three intervals (by the clock
// option), or once SetTargets has removed it. Within a fresh target, only
// series present in the latest scrape take part in a query: a series that
// disappeared is never reported with its last value.
//
// # Queries
//
// Gauge sums, over the target's series of a metric whose labels match every
// given pair, the values of the latest scrape. A pair matches a series label
// of that name or, when the series has none, the target's label (Target.Labels);
// a label absent from both does not match, not even the empty value.
//
// Rate is the per-second increase of a counter (or untyped) metric, summed
// over the matching series. Each series uses its samples inside the window
// [latest scrape - window - interval/4, latest scrape] (the slack admits a
// scrape that started a little late), both ends included, and needs at
// least two of them; its increase is the sum of the differences of
// consecutive samples where a decrease is a counter reset, so the increase
// across it is the new value (as in Prometheus' rate), divided by the time
// between its oldest and newest sample used. Unlike Prometheus, the result
// is not extrapolated to the window's edges. Value.Timestamp is the latest
// scrape and Value.Window the time covered, newest minus oldest sample used,
// to report as windowSeconds.
package scrape
