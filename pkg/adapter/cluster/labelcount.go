package cluster

import (
	"sync"

	"k8s.io/client-go/tools/cache"
)

// labelCounts counts the pods per entry of the label index
// ("namespace/key=value"), so a selector's most selective requirement is
// found without listing the pods of every requirement (listing the 10,000
// pods of role=scale to learn that group=g3 has 1,000 was most of an HPA
// query's time). The counts follow the informer's events: a moment behind
// its store at most, which only affects which requirement is listed, never
// which pods match.
type labelCounts struct {
	mu sync.RWMutex
	n  map[string]int
}

func newLabelCounts() *labelCounts { return &labelCounts{n: map[string]int{}} }

func (l *labelCounts) handler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { l.add(obj, 1) },
		UpdateFunc: func(old, obj any) {
			l.add(old, -1)
			l.add(obj, 1)
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			l.add(obj, -1)
		},
	}
}

func (l *labelCounts) add(obj any, delta int) {
	keys, _ := byNamespaceLabel(obj)
	if len(keys) == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		if l.n[k] += delta; l.n[k] <= 0 {
			delete(l.n, k)
		}
	}
}

// count is the number of pods with index entry key.
func (l *labelCounts) count(key string) int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.n[key]
}
