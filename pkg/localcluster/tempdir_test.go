package localcluster

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestNewTempDirSweepsOnlyDeadOwners(t *testing.T) {
	base := t.TempDir()
	// A pid that surely is gone: a child we started and reaped.
	dead := exec.Command("/bin/true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	mk := func(name, owner string, age time.Duration) string {
		dir := filepath.Join(base, name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if owner != "" {
			if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(owner), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		old := time.Now().Add(-age)
		if err := os.Chtimes(dir, old, old); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	stale := mk(tempDirPrefix+"dead", strconv.Itoa(dead.Process.Pid), 0)
	live := mk(tempDirPrefix+"live", strconv.Itoa(os.Getpid()), 0)
	creating := mk(tempDirPrefix+"creating", "", time.Minute)
	ancient := mk(tempDirPrefix+"ancient", "", 48*time.Hour)
	other := mk("someone-elses", strconv.Itoa(dead.Process.Pid), 0)

	dir, err := newTempDir(base)
	if err != nil {
		t.Fatal(err)
	}
	for path, wantGone := range map[string]bool{stale: true, ancient: true, live: false, creating: false, other: false, dir: false} {
		_, err := os.Stat(path)
		if gone := os.IsNotExist(err); gone != wantGone {
			t.Errorf("%s: gone=%v, want %v", filepath.Base(path), gone, wantGone)
		}
	}
	owner, err := os.ReadFile(filepath.Join(dir, ownerFile))
	if err != nil || string(owner) != strconv.Itoa(os.Getpid()) {
		t.Errorf("owner file: %q, %v", owner, err)
	}
}
