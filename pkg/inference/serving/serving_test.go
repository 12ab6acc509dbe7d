package serving

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func TestReadBody(t *testing.T) {
	want := strings.Repeat("x", 10_000)
	for _, c := range []int{0, 1, 64, 10_000, 20_000} {
		buf := make([]byte, 0, c)
		got, err := ReadBody(iotest.OneByteReader(strings.NewReader(want)), buf)
		if err != nil || string(got) != want {
			t.Errorf("cap %d: %d bytes, %v; want %d bytes", c, len(got), err, len(want))
		}
		if c > len(want) && &got[0] != &buf[:1][0] {
			t.Errorf("cap %d: the body did not go into the caller's buffer", c)
		}
	}
	boom := errors.New("boom")
	if _, err := ReadBody(iotest.ErrReader(boom), nil); !errors.Is(err, boom) {
		t.Errorf("error %v, want %v", err, boom)
	}
}

// drainer records the drain and shuts the server down.
type drainer struct{ delay chan time.Duration }

func (d drainer) Shutdown(ctx context.Context, srv *http.Server, delay time.Duration) error {
	d.delay <- delay
	return srv.Shutdown(ctx)
}

// Serve answers until its context ends, then drains through the Drainer
// with the given delay and returns nil.
func TestServeDrains(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	d := drainer{delay: make(chan time.Duration, 1)}
	done := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	go func() { done <- Serve(ctx, l, h, d, 3*time.Millisecond, time.Second) }()

	resp, err := http.Get("http://" + l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(body, []byte("ok")) {
		t.Fatalf("body %q", body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return 10 s after its context ended")
	}
	if got := <-d.delay; got != 3*time.Millisecond {
		t.Errorf("drain delay %v, want 3ms", got)
	}
}

// Serve returns the server's own error when serving stops by itself.
func TestServeReturnsServerError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	err = Serve(t.Context(), l, http.NotFoundHandler(), drainer{delay: make(chan time.Duration, 1)}, 0, time.Second)
	if err == nil || errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve on a closed listener: %v, want its error", err)
	}
}

// ListenAndRun hands run a listener on the address, or says why it has none.
func TestListenAndRun(t *testing.T) {
	var addr net.Addr
	err := ListenAndRun("127.0.0.1:0", func(ctx context.Context, l net.Listener) error {
		addr = l.Addr()
		return l.Close()
	})
	if err != nil || addr == nil || !strings.HasPrefix(addr.String(), "127.0.0.1:") {
		t.Errorf("ListenAndRun: %v, listener on %v", err, addr)
	}
	ran := false
	if err := ListenAndRun("127.0.0.1:-1", func(context.Context, net.Listener) error { ran = true; return nil }); err == nil || ran {
		t.Errorf("ListenAndRun on a bad address: %v (ran %t), want an error and no run", err, ran)
	}
}
