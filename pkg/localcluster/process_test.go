package localcluster

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

const helperEnv = "GPUFLEET_LOCALCLUSTER_HELPER"

// TestHelperStartsChild is not a test on its own: run by
// TestChildDiesWithParent in a subprocess, it starts a long-lived child,
// prints its pid and blocks until killed.
func TestHelperStartsChild(t *testing.T) {
	if os.Getenv(helperEnv) != "child" {
		t.Skip("helper process for TestChildDiesWithParent")
	}
	p, err := startProcess("sleeper", "/bin/sleep", []string{"600"}, filepath.Join(t.TempDir(), "sleeper.log"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("child-pid=%d\n", p.pid())
	select {} // until the parent test kills us
}

// A test binary killed by `go test -timeout` runs no cleanup; its children
// must still die with it.
func TestChildDiesWithParent(t *testing.T) {
	helper := exec.Command(os.Args[0], "-test.run=^TestHelperStartsChild$", "-test.v")
	helper.Env = append(os.Environ(), helperEnv+"=child")
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = helper.Process.Kill(); _ = helper.Wait() })
	childPID := 0
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "child-pid="); ok {
			if childPID, err = strconv.Atoi(v); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	if childPID == 0 {
		t.Fatalf("helper printed no child pid (scan error: %v)", sc.Err())
	}
	if !Alive(childPID) {
		t.Fatalf("child %d is not running while its parent lives", childPID)
	}
	if err := helper.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = helper.Wait()
	err = wait.PollUntilContextTimeout(t.Context(), 20*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return !Alive(childPID), nil
	})
	if err != nil {
		_ = syscall.Kill(childPID, syscall.SIGKILL)
		t.Fatalf("child %d outlived its SIGKILLed parent: %v", childPID, err)
	}
}

func TestStopReapsChild(t *testing.T) {
	p, err := startProcess("sleeper", "/bin/sleep", []string{"600"}, filepath.Join(t.TempDir(), "logs", "sleeper.log"))
	if err != nil {
		t.Fatal(err)
	}
	pid := p.pid()
	if done, _ := p.exited(); done {
		t.Fatal("child exited at once")
	}
	if err := p.stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if Alive(pid) {
		t.Fatalf("pid %d still alive after stop", pid)
	}
	if done, _ := p.exited(); !done {
		t.Fatal("exited() is false after stop")
	}
	if err := p.stop(time.Second); err != nil {
		t.Fatalf("second stop: %v", err)
	}
}

// A child that ignores SIGTERM is killed after the grace period.
func TestStopKillsStubbornChild(t *testing.T) {
	p, err := startProcess("stubborn", "/bin/sh", []string{"-c", "trap '' TERM; echo ready; while :; do sleep 0.05; done"}, filepath.Join(t.TempDir(), "stubborn.log"))
	if err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(t.Context(), 10*time.Millisecond, 5*time.Second, true, func(context.Context) (bool, error) {
		return strings.Contains(p.logTail(1), "ready"), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := p.stop(300 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if Alive(p.pid()) {
		t.Fatal("stubborn child survived stop")
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Fatalf("stop returned after %s, before the grace period: SIGTERM was not ignored, so this test proves nothing", d)
	}
}

func TestStartProcessMissingBinary(t *testing.T) {
	_, err := startProcess("nothing", "/nonexistent/binary", nil, filepath.Join(t.TempDir(), "x.log"))
	if err == nil || !strings.Contains(err.Error(), "starting nothing") {
		t.Fatalf("want a clear start error, got %v", err)
	}
}

func TestAlive(t *testing.T) {
	if !Alive(os.Getpid()) {
		t.Error("Alive(self) = false")
	}
	for _, pid := range []int{0, -1} {
		if Alive(pid) {
			t.Errorf("Alive(%d) = true", pid)
		}
	}
}

func TestFreePortsDistinct(t *testing.T) {
	ports, err := freePorts(20)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if p <= 0 || seen[p] {
			t.Fatalf("bad or repeated port %d in %v", p, ports)
		}
		seen[p] = true
	}
}
