package localcluster

import (
	"os"
	"strings"
	"testing"
)

// shareKubeletRoot leaves the directory a shared mount point of its own,
// and a second call (a kubelet restarted on the same root) changes nothing.
func TestShareKubeletRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting needs root")
	}
	dir := t.TempDir()
	t.Cleanup(func() {
		if err := unmountUnder(dir); err != nil {
			t.Error(err)
		}
	})
	for range 2 {
		if err := shareKubeletRoot(dir); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 6 && unescapeMount(f[4]) == dir {
			lines = append(lines, line)
		}
	}
	// One mount, and shared: the optional fields before " - " name its
	// peer group.
	if len(lines) != 1 || !strings.Contains(strings.Split(lines[0], " - ")[0], " shared:") {
		t.Fatalf("mounts at %s: %q, want one shared mount", dir, lines)
	}
}
