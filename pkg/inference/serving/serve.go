package serving

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	"k8s.io/klog/v2"
)

// Drainer shuts a server down gracefully: readiness off, drainDelay for
// load balancers to notice, then srv.Shutdown within ctx.
type Drainer interface {
	Shutdown(ctx context.Context, srv *http.Server, drainDelay time.Duration) error
}

// Serve serves h on l until ctx ends, then drains through d: drainDelay,
// and at most timeout more for the requests in flight. It returns the
// server's error if serving stops by itself, nil after a clean drain.
func Serve(ctx context.Context, l net.Listener, h http.Handler, d Drainer, drainDelay, timeout time.Duration) error {
	logger := klog.FromContext(ctx)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("Shutting down: readiness off, draining", "delay", drainDelay, "timeout", timeout)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), drainDelay+timeout)
	defer cancel()
	if err := d.Shutdown(shutdownCtx, srv, drainDelay); err != nil {
		return fmt.Errorf("graceful shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	logger.Info("Stopped")
	return nil
}

// ListenAndRun listens on addr and runs run there with a context that ends
// on SIGINT or SIGTERM: the start of the inference server's and the
// router's commands.
func ListenAndRun(addr string, run func(context.Context, net.Listener) error) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return run(ctx, l)
}
