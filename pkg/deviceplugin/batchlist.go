package deviceplugin

import (
	"context"
	"sync"
	"time"

	podresourcesv1 "k8s.io/kubelet/pkg/apis/podresources/v1"
)

// batchLister shares pod-resources Lists among concurrent calls: when many
// containers start at once the kubelet calls PreStartContainer for each
// concurrently, and a List per call queues up on the busy kubelet (and its
// rate limit of 100 Lists/s). A call waits for the next List that starts
// after it came, and every call waiting then gets that List's answer: as
// fresh as a List of its own, with one List per batch.
type batchLister struct {
	lister  PodResourcesLister
	timeout time.Duration

	mu      sync.Mutex
	next    *listBatch // what the next List will answer; nil: no one waits
	running bool
}

// listBatch is one List and the calls it answers.
type listBatch struct {
	done chan struct{}
	list []*podresourcesv1.PodResources
	err  error
}

func newBatchLister(l PodResourcesLister, timeout time.Duration) *batchLister {
	return &batchLister{lister: l, timeout: timeout}
}

// List returns the answer of a List that started after the call.
func (b *batchLister) List(ctx context.Context) ([]*podresourcesv1.PodResources, error) {
	b.mu.Lock()
	if b.next == nil {
		b.next = &listBatch{done: make(chan struct{})}
	}
	mine := b.next
	if !b.running {
		b.running = true
		go b.run()
	}
	b.mu.Unlock()
	select {
	case <-mine.done:
		return mine.list, mine.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// run makes Lists while calls wait for one.
func (b *batchLister) run() {
	for {
		b.mu.Lock()
		batch := b.next
		b.next = nil
		if batch == nil {
			b.running = false
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
		batch.list, batch.err = b.lister.List(ctx)
		cancel()
		close(batch.done)
	}
}
