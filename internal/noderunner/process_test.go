package noderunner

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// helperEnv makes this test binary a program for Process to run (see
// TestMain): "serve=ADDR" serves 200 on ADDR until SIGTERM, "fail" exits 3.
const helperEnv = "NODERUNNER_TEST_HELPER"

func TestMain(m *testing.M) {
	switch v := os.Getenv(helperEnv); {
	case strings.HasPrefix(v, "serve="):
		os.Exit(serve(strings.TrimPrefix(v, "serve=")))
	case v == "fail":
		fmt.Println("failing on purpose")
		os.Exit(3)
	}
	os.Exit(m.Run())
}

func serve(addr string) int {
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	l, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	go func() { _ = http.Serve(l, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})) }()
	<-term
	fmt.Println("SIGTERM: drained, exiting")
	return 0
}

func testPod() *corev1.Pod {
	grace := int64(5)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "server-0", Namespace: "ml", UID: "0123456789abcdef"},
		Spec:       corev1.PodSpec{TerminationGracePeriodSeconds: &grace},
	}
}

func TestProcessServesUntilStopped(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	p := &Process{LogDir: t.TempDir(), Command: func(pod *corev1.Pod, ip string) (Command, error) {
		return Command{Path: os.Args[0], Args: []string{"-test.run=^$"}, Env: []string{helperEnv + "=serve=" + addr}, ReadyURL: "http://" + addr + "/"}, nil
	}}
	stop, err := p.Start(t.Context(), testPod(), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatalf("not serving after Start: %v", err)
	}
	_ = resp.Body.Close()
	stopped := time.Now()
	stop()
	if took := time.Since(stopped); took > 4*time.Second {
		t.Errorf("stop took %v: SIGTERM should end the program at once", took)
	}
	if _, err := http.Get("http://" + addr + "/"); err == nil {
		t.Error("still serving after stop")
	}
	if logs := p.LogTails(5); !strings.Contains(logs, "SIGTERM: drained, exiting") || !strings.Contains(logs, "ml_server-0_01234567.log") {
		t.Errorf("log tails %q lack the program's goodbye or the pod's log name", logs)
	}
}

func TestProcessFailsWhenProgramExits(t *testing.T) {
	p := &Process{LogDir: t.TempDir(), ReadyTimeout: 10 * time.Second, Command: func(pod *corev1.Pod, ip string) (Command, error) {
		return Command{Path: os.Args[0], Args: []string{"-test.run=^$"}, Env: []string{helperEnv + "=fail"}, ReadyURL: "http://127.0.0.1:1/"}, nil
	}}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	_, err := p.Start(ctx, testPod(), "127.0.0.1")
	if err == nil || !strings.Contains(err.Error(), "exited before it was ready") || !strings.Contains(err.Error(), "failing on purpose") {
		t.Errorf("Start: %v; want an error saying the program exited, with its log", err)
	}
}
