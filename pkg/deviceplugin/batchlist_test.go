package deviceplugin

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	podresourcesv1 "k8s.io/kubelet/pkg/apis/podresources/v1"
)

// slowLister is a kubelet whose List takes a while; it counts Lists and
// stamps each answer with the List's start.
type slowLister struct {
	lists   atomic.Int64
	started atomic.Int64 // UnixNano of the last List's start
	took    time.Duration
}

func (s *slowLister) List(ctx context.Context) ([]*podresourcesv1.PodResources, error) {
	s.lists.Add(1)
	start := time.Now()
	s.started.Store(start.UnixNano())
	select {
	case <-time.After(s.took):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return []*podresourcesv1.PodResources{{Name: start.Format(time.RFC3339Nano)}}, nil
}

// Concurrent calls share Lists, and each gets a List that started after
// the call did.
func TestBatchListerSharesFreshLists(t *testing.T) {
	kubelet := &slowLister{took: 20 * time.Millisecond}
	b := newBatchLister(kubelet, time.Second)
	const calls = 50
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	for range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			called := time.Now()
			list, err := b.List(t.Context())
			if err != nil {
				errs <- err
				return
			}
			started, err := time.Parse(time.RFC3339Nano, list[0].GetName())
			if err != nil {
				errs <- err
				return
			}
			if started.Before(called) {
				errs <- fmt.Errorf("a call at %v got a List that started at %v, before it", called, started)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := kubelet.lists.Load(); n >= calls/2 {
		t.Errorf("%d concurrent calls made %d Lists; want them shared", calls, n)
	}
	t.Logf("%d concurrent calls, %d Lists", calls, kubelet.lists.Load())
}

// A call whose context ends stops waiting; the List goes on for the others.
func TestBatchListerCallerGivesUp(t *testing.T) {
	kubelet := &slowLister{took: 200 * time.Millisecond}
	b := newBatchLister(kubelet, time.Second)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	if _, err := b.List(ctx); err == nil {
		t.Fatal("a call that gave up got an answer")
	}
	if _, err := b.List(t.Context()); err != nil {
		t.Fatalf("the next call: %v", err)
	}
}
