package attribution

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	testUID        = "1234abcd-5678-4ef0-9abc-def012345678"
	testUIDSystemd = "1234abcd_5678_4ef0_9abc_def012345678"
	testCID        = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	otherCID       = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
)

type cgroupCase struct {
	name    string
	data    string
	wantUID string
	wantCID string
	wantOK  bool
}

// cgroupCases are the table for TestPodFromCgroup and the seed corpus of
// FuzzPodFromCgroup.
var cgroupCases = []cgroupCase{
	// cgroup v2, systemd driver.
	{name: "v2 systemd containerd burstable", data: "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + testUIDSystemd + ".slice/cri-containerd-" + testCID + ".scope\n", wantUID: testUID, wantCID: testCID, wantOK: true},
	{name: "v2 systemd containerd besteffort", data: "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + testUIDSystemd + ".slice/cri-containerd-" + testCID + ".scope\n", wantUID: testUID, wantCID: testCID, wantOK: true},
	{name: "v2 systemd containerd guaranteed", data: "0::/kubepods.slice/kubepods-pod" + testUIDSystemd + ".slice/cri-containerd-" + testCID + ".scope\n", wantUID: testUID, wantCID: testCID, wantOK: true},
	{name: "v2 systemd crio", data: "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + testUIDSystemd + ".slice/crio-" + testCID + ".scope\n", wantUID: testUID, wantCID: testCID, wantOK: true},
	{name: "v2 systemd docker", data: "0::/kubepods.slice/kubepods-pod" + testUIDSystemd + ".slice/docker-" + testCID + ".scope\n", wantUID: testUID, wantCID: testCID, wantOK: true},
	{name: "v2 systemd no trailing newline", data: "0::/kubepods.slice/kubepods-pod" + testUIDSystemd + ".slice/cri-containerd-" + testCID + ".scope", wantUID: testUID, wantCID: testCID, wantOK: true},
	{name: "v2 systemd kind cgroup root", data: "0::/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod" + testUIDSystemd + ".slice/cri-containerd-" + testCID + ".scope\n", wantUID: testUID, wantCID: testCID, wantOK: true},
	{name: "v2 relative to the reader's cgroup namespace", data: "0::/../../kubepods-besteffort-pod" + testUIDSystemd + ".slice/cri-containerd-" + testCID + ".scope\n", wantUID: testUID, wantCID: testCID, wantOK: true},
	{name: "v2 nested cgroup inside the container", data: "0::/kubepods.slice/kubepods-pod" + testUIDSystemd + ".slice/cri-containerd-" + testCID + ".scope/system.slice/app.service\n", wantUID: testUID, wantCID: testCID, wantOK: true},
	// cgroup v2, cgroupfs driver.
	{name: "v2 cgroupfs containerd burstable", data: "0::/kubepods/burstable/pod" + testUID + "/" + testCID + "\n", wantUID: testUID, wantCID: testCID, wantOK: true},
	{name: "v2 cgroupfs guaranteed", data: "0::/kubepods/pod" + testUID + "/" + testCID + "\n", wantUID: testUID, wantCID: testCID, wantOK: true},
	{name: "v2 cgroupfs crio", data: "0::/kubepods/besteffort/pod" + testUID + "/crio-" + testCID + "\n", wantUID: testUID, wantCID: testCID, wantOK: true},
	// cgroup v1.
	{
		name: "v1 cgroupfs all controllers",
		data: "12:memory:/kubepods/burstable/pod" + testUID + "/" + testCID + "\n" +
			"11:cpu,cpuacct:/kubepods/burstable/pod" + testUID + "/" + testCID + "\n" +
			"3:devices:/kubepods/burstable/pod" + testUID + "/" + testCID + "\n" +
			"1:name=systemd:/kubepods/burstable/pod" + testUID + "/" + testCID + "\n" +
			"0::/\n",
		wantUID: testUID, wantCID: testCID, wantOK: true,
	},
	{name: "v1 cgroupfs guaranteed", data: "12:memory:/kubepods/pod" + testUID + "/" + testCID + "\n", wantUID: testUID, wantCID: testCID, wantOK: true},
	{
		name: "v1 systemd docker",
		data: "10:pids:/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + testUIDSystemd + ".slice/docker-" + testCID + ".scope\n" +
			"1:name=systemd:/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + testUIDSystemd + ".slice/docker-" + testCID + ".scope\n",
		wantUID: testUID, wantCID: testCID, wantOK: true,
	},
	{
		name: "hybrid: v1 controllers in the pod, unified line elsewhere",
		data: "12:memory:/kubepods/burstable/pod" + testUID + "/" + testCID + "\n" +
			"0::/system.slice/containerd.service\n",
		wantUID: testUID, wantCID: testCID, wantOK: true,
	},
	// Not a pod container.
	{name: "empty", data: ""},
	{name: "host process v2", data: "0::/user.slice/user-1000.slice/session-3.scope\n"},
	{name: "host process v1", data: "12:memory:/user.slice\n1:name=systemd:/init.scope\n"},
	{name: "container runtime itself", data: "0::/system.slice/containerd.service\n"},
	{name: "docker container outside kubernetes", data: "0::/system.slice/docker-" + testCID + ".scope\n"},
	{name: "pod cgroup without a container", data: "0::/kubepods/burstable/pod" + testUID + "\n"},
	{name: "crio conmon", data: "0::/kubepods.slice/kubepods-pod" + testUIDSystemd + ".slice/crio-conmon-" + testCID + ".scope\n"},
	{name: "lines disagree", data: "12:memory:/kubepods/pod" + testUID + "/" + testCID + "\n11:pids:/kubepods/pod" + testUID + "/" + otherCID + "\n"},
	// Malformed UIDs.
	{name: "uid too short", data: "0::/kubepods/pod" + testUID[:35] + "/" + testCID + "\n"},
	{name: "uid upper case", data: "0::/kubepods/pod" + strings.ToUpper(testUID) + "/" + testCID + "\n"},
	{name: "uid dashes misplaced", data: "0::/kubepods/pod1234abcd5-678-4ef0-9abc-def012345678/" + testCID + "\n"},
	{name: "uid not hex", data: "0::/kubepods/pod1234abcg-5678-4ef0-9abc-def012345678/" + testCID + "\n"},
	{name: "static pod uid without dashes", data: "0::/kubepods/pod0123456789abcdef0123456789abcdef/" + testCID + "\n"},
	{name: "systemd uid with dashes", data: "0::/kubepods.slice/kubepods-pod" + testUID + ".slice/cri-containerd-" + testCID + ".scope\n"},
	{name: "systemd uid mixed separators", data: "0::/kubepods.slice/kubepods-pod1234abcd_5678-4ef0_9abc_def012345678.slice/cri-containerd-" + testCID + ".scope\n"},
	{name: "systemd unknown qos", data: "0::/kubepods.slice/kubepods-silver-pod" + testUIDSystemd + ".slice/cri-containerd-" + testCID + ".scope\n"},
	{name: "systemd not kubepods", data: "0::/machine.slice/machine-pod" + testUIDSystemd + ".slice/cri-containerd-" + testCID + ".scope\n"},
	// Malformed container IDs.
	{name: "container id too short", data: "0::/kubepods/pod" + testUID + "/" + testCID[:63] + "\n"},
	{name: "container id too long", data: "0::/kubepods/pod" + testUID + "/" + testCID + "0\n"},
	{name: "container id upper case", data: "0::/kubepods/pod" + testUID + "/" + strings.ToUpper(testCID) + "\n"},
	{name: "scope without runtime prefix", data: "0::/kubepods.slice/kubepods-pod" + testUIDSystemd + ".slice/" + testCID + ".scope\n"},
	{name: "unknown runtime prefix", data: "0::/kubepods.slice/kubepods-pod" + testUIDSystemd + ".slice/rkt-" + testCID + ".scope\n"},
	// Malformed lines.
	{name: "no hierarchy id", data: ":memory:/kubepods/pod" + testUID + "/" + testCID + "\n"},
	{name: "hierarchy id not a number", data: "x:memory:/kubepods/pod" + testUID + "/" + testCID + "\n"},
	{name: "missing controllers field", data: "0:/kubepods/pod" + testUID + "/" + testCID + "\n"},
	{name: "carriage returns", data: "0::/kubepods/pod" + testUID + "/" + testCID + "\r\n"},
	{name: "binary junk", data: "\x00\xff\n::\n:::\n0::\n0::/\n0::/pod\n"},
}

func TestPodFromCgroup(t *testing.T) {
	for _, tc := range cgroupCases {
		t.Run(tc.name, func(t *testing.T) {
			uid, cid, ok := PodFromCgroup([]byte(tc.data))
			if uid != tc.wantUID || cid != tc.wantCID || ok != tc.wantOK {
				t.Errorf("PodFromCgroup(%q) = %q, %q, %v; want %q, %q, %v", tc.data, uid, cid, ok, tc.wantUID, tc.wantCID, tc.wantOK)
			}
		})
	}
}

func FuzzPodFromCgroup(f *testing.F) {
	for _, tc := range cgroupCases {
		f.Add([]byte(tc.data))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		uid, cid, ok := PodFromCgroup(data)
		if !ok {
			if uid != "" || cid != "" {
				t.Fatalf("ok=false with values %q, %q", uid, cid)
			}
			return
		}
		if !validUID(uid, '-') {
			t.Errorf("malformed pod UID %q", uid)
		}
		if !validContainerID(cid) {
			t.Errorf("malformed container ID %q", cid)
		}
		s := string(data)
		if !strings.Contains(s, uid) && !strings.Contains(s, strings.ReplaceAll(uid, "-", "_")) {
			t.Errorf("pod UID %q is not in the input", uid)
		}
		if !strings.Contains(s, cid) {
			t.Errorf("container ID %q is not in the input", cid)
		}
		uid2, cid2, ok2 := PodFromCgroup(data)
		if uid2 != uid || cid2 != cid || ok2 != ok {
			t.Errorf("second call = %q, %q, %v; first = %q, %q, %v", uid2, cid2, ok2, uid, cid, ok)
		}
	})
}

func TestProcResolver(t *testing.T) {
	root := t.TempDir()
	writeCgroup := func(pid, data string) {
		t.Helper()
		dir := filepath.Join(root, pid)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "cgroup"), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeCgroup("4242", "0::/kubepods.slice/kubepods-pod"+testUIDSystemd+".slice/cri-containerd-"+testCID+".scope\n")
	writeCgroup("1", "0::/init.scope\n")
	writeCgroup("7", "0::/"+strings.Repeat("x", 500)+"\n")

	tests := []struct {
		name     string
		pid      uint32
		wantUID  string
		wantCID  string
		wantErr  error
		wantText []string
	}{
		{name: "pod process", pid: 4242, wantUID: testUID, wantCID: testCID},
		{name: "host process", pid: 1, wantErr: ErrNotInPod, wantText: []string{"process 1", "0::/init.scope"}},
		{name: "long cgroup is cut short in the error", pid: 7, wantErr: ErrNotInPod, wantText: []string{"process 7", "xxx..."}},
		{name: "exited process", pid: 99999, wantErr: fs.ErrNotExist, wantText: []string{"process 99999", "may have exited", root}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			uid, cid, err := ProcResolver{Root: root}.Resolve(tc.pid)
			if !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
				t.Fatalf("Resolve(%d) error = %v, want one wrapping %v", tc.pid, err, tc.wantErr)
			}
			if uid != tc.wantUID || cid != tc.wantCID {
				t.Errorf("Resolve(%d) = %q, %q; want %q, %q", tc.pid, uid, cid, tc.wantUID, tc.wantCID)
			}
			for _, s := range tc.wantText {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			if tc.wantErr != nil && len(err.Error()) > 400 {
				t.Errorf("error is %d bytes long, want a short one", len(err.Error()))
			}
		})
	}
}

func TestProcResolverDefaultRoot(t *testing.T) {
	// The test process itself is not in a pod container unless the tests
	// run in a pod; either way Resolve must read /proc/<pid>/cgroup.
	_, _, err := ProcResolver{}.Resolve(uint32(os.Getpid()))
	if err != nil && !errors.Is(err, ErrNotInPod) {
		t.Errorf("Resolve(own pid) = %v, want success or ErrNotInPod", err)
	}
}
