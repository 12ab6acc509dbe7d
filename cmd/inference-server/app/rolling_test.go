package app

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A rolling replacement of one server by another under load loses no
// request: the old server turns unready, keeps serving while the load
// balancer notices, then drains and exits.
func TestIntegrationRollingReplacementLosesNoRequest(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two servers under load for about two seconds")
	}
	start := func(name string) (string, context.CancelFunc, chan error) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		o := NewOptions()
		o.ModelRepository = filepath.Join("..", "..", "..", "models")
		o.Device = DeviceCPU
		o.Listen = l.Addr().String()
		o.ShutdownDelay = 300 * time.Millisecond
		o.ShutdownTimeout = 10 * time.Second
		if err := o.Validate(); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- Run(ctx, o, l) }()
		t.Cleanup(cancel)
		return "http://" + l.Addr().String(), cancel, done
	}

	// The load balancer: it sends to servers whose readiness it last saw
	// true, polling every 20 ms as an endpoints controller would.
	var (
		mu      sync.Mutex
		servers []string
		ready   = map[string]bool{}
	)
	stopLB := make(chan struct{})
	lbDone := make(chan struct{})
	go func() {
		defer close(lbDone)
		client := &http.Client{Timeout: time.Second}
		for {
			mu.Lock()
			list := append([]string(nil), servers...)
			mu.Unlock()
			for _, s := range list {
				ok := false
				if resp, err := client.Get(s + "/v2/health/ready"); err == nil {
					ok = resp.StatusCode == http.StatusOK
					_ = resp.Body.Close()
				}
				mu.Lock()
				ready[s] = ok
				mu.Unlock()
			}
			select {
			case <-stopLB:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	pick := func(i int) string {
		mu.Lock()
		defer mu.Unlock()
		var up []string
		for _, s := range servers {
			if ready[s] {
				up = append(up, s)
			}
		}
		if len(up) == 0 {
			return ""
		}
		return up[i%len(up)]
	}
	addServer := func(url string) {
		mu.Lock()
		servers = append(servers, url)
		mu.Unlock()
		waitUntil(t, url+" ready in the load balancer", func() bool { return pick(0) != "" && func() bool { mu.Lock(); defer mu.Unlock(); return ready[url] }() })
	}

	oldURL, stopOld, oldDone := start("old")
	addServer(oldURL)

	var ok, failed, byNew atomic.Int64
	var firstErr atomic.Value
	stopLoad := make(chan struct{})
	var wg sync.WaitGroup
	body := `{"inputs":[{"name":"features","datatype":"FP32","shape":[1,8],"data":[120,3,2,15,4.5,400,1,4]}]}`
	newURL := ""
	for w := range 4 {
		wg.Go(func() {
			client := &http.Client{Timeout: 10 * time.Second}
			for i := w; ; i += 4 {
				select {
				case <-stopLoad:
					return
				default:
				}
				target := pick(i)
				if target == "" {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, "no ready server")
					continue
				}
				resp, err := client.Post(target+"/v2/models/property-value/infer", "application/json", strings.NewReader(body))
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%s: %s", resp.Status, b))
					continue
				}
				ok.Add(1)
				mu.Lock()
				if target == newURL {
					byNew.Add(1)
				}
				mu.Unlock()
			}
		})
	}
	time.Sleep(300 * time.Millisecond) // load on the old server alone
	u, _, _ := start("new")
	mu.Lock()
	newURL = u
	mu.Unlock()
	addServer(u)
	stopOld() // SIGTERM
	select {
	case err := <-oldDone:
		if err != nil {
			t.Errorf("old server: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("old server did not exit")
	}
	time.Sleep(300 * time.Millisecond) // load on the new server alone
	close(stopLoad)
	wg.Wait()
	close(stopLB)
	<-lbDone
	if failed.Load() != 0 {
		t.Errorf("%d of %d requests failed during the replacement; first: %v", failed.Load(), failed.Load()+ok.Load(), firstErr.Load())
	}
	if ok.Load() < 100 || byNew.Load() == 0 {
		t.Errorf("too little load to prove anything: %d requests, %d by the new server", ok.Load(), byNew.Load())
	}
	t.Logf("%d requests, %d by the new server, none lost", ok.Load(), byNew.Load())
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
