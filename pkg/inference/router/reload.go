package router

import (
	"bytes"
	"context"
	"os"
	"time"
)

// WatchRulesFile rereads path every interval and puts changed rules in
// force. A mounted ConfigMap changes by an atomic symlink swap some time
// after the ConfigMap does, so reading the file whole is enough. Invalid
// rules are logged and counted; the rules in force stay. It returns when
// ctx ends.
func (r *Router) WatchRulesFile(ctx context.Context, path, namespace string, interval time.Duration, loaded []byte) {
	last := loaded
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		data, err := os.ReadFile(path)
		if err != nil {
			r.metrics.reloads.WithLabelValues("error").Inc()
			logger(ctx).Info("Reading the rules file failed; the rules in force stay", "path", path, "err", err)
			continue
		}
		if bytes.Equal(data, last) {
			continue
		}
		last = data
		rules, err := Decode(data, namespace)
		if err == nil {
			err = r.SetRules(rules)
		}
		if err != nil {
			r.metrics.reloads.WithLabelValues("error").Inc()
			logger(ctx).Error(err, "New rules refused; the rules in force stay", "path", path)
			continue
		}
		r.metrics.reloads.WithLabelValues("ok").Inc()
		logger(ctx).Info("Rules reloaded", "path", path, "routes", len(rules.Routes), "backends", len(rules.Backends))
	}
}
