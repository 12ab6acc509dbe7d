package attribution

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ErrNotInPod is returned (wrapped) by ProcResolver.Resolve for a process
// that does not run in a container of a Kubernetes pod, such as a host
// process using the GPU.
var ErrNotInPod = errors.New("process is not in a Kubernetes pod container")

// DefaultProcRoot is where ProcResolver reads /proc unless told otherwise.
const DefaultProcRoot = "/proc"

// PodFromCgroup extracts the pod UID and the container ID from the contents
// of a /proc/<pid>/cgroup file, as the kubelet and the container runtime name
// cgroups. It understands cgroup v2 ("0::/path") and v1
// ("12:memory:/path") lines; the systemd cgroup driver
//
//	/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_with_underscores>.slice/cri-containerd-<id>.scope
//
// and the cgroupfs driver
//
//	/kubepods/besteffort/pod<uid>/<id>
//
// for every QoS class (guaranteed pods have no QoS level: kubepods-pod<uid>.slice,
// /kubepods/pod<uid>); containerd ("cri-containerd-"), CRI-O ("crio-") and
// docker ("docker-") scopes; a kubelet --cgroup-root other than "/" (kind's
// "kubelet-kubepods-...slice"); and paths relative to the reader's cgroup
// namespace ("0::/../../kubepods-...").
//
// podUID is returned in its usual form with dashes; containerID is the 64
// lowercase hex digits without the runtime's prefix. ok is false unless some
// line names a well-formed pod UID followed by a well-formed container ID,
// and also when two lines name different containers.
func PodFromCgroup(data []byte) (podUID, containerID string, ok bool) {
	for line := range strings.Lines(string(data)) {
		uid, cid, lineOK := podFromCgroupLine(strings.TrimSuffix(line, "\n"))
		if !lineOK {
			continue
		}
		if ok && (uid != podUID || cid != containerID) {
			return "", "", false
		}
		podUID, containerID, ok = uid, cid, true
	}
	return podUID, containerID, ok
}

// podFromCgroupLine parses "hierarchy-ID:controllers:path".
func podFromCgroupLine(line string) (podUID, containerID string, ok bool) {
	id, rest, found := strings.Cut(line, ":")
	if !found || id == "" || strings.Trim(id, "0123456789") != "" {
		return "", "", false
	}
	_, path, found := strings.Cut(rest, ":")
	if !found {
		return "", "", false
	}
	segs := strings.Split(path, "/")
	for i, seg := range segs {
		uid, isPod := podSegment(seg)
		if !isPod {
			continue
		}
		// The container's cgroup is right below the pod's; anything deeper
		// is cgroups the container made for itself.
		if i+1 == len(segs) {
			return "", "", false
		}
		cid, isContainer := containerSegment(segs[i+1])
		if !isContainer {
			return "", "", false
		}
		return uid, cid, true
	}
	return "", "", false
}

// podSegment recognizes a pod's cgroup name: "pod<uid>" (cgroupfs) or
// "[<root>-]kubepods[-<qos>]-pod<uid_with_underscores>.slice" (systemd).
func podSegment(seg string) (uid string, ok bool) {
	if raw, found := strings.CutPrefix(seg, "pod"); found {
		return raw, validUID(raw, '-')
	}
	name, found := strings.CutSuffix(seg, ".slice")
	if !found {
		return "", false
	}
	i := strings.LastIndex(name, "-pod")
	if i < 0 {
		return "", false
	}
	parents := strings.Split(name[:i], "-")
	switch parents[len(parents)-1] {
	case "kubepods":
	case "burstable", "besteffort":
		if len(parents) < 2 || parents[len(parents)-2] != "kubepods" {
			return "", false
		}
	default:
		return "", false
	}
	raw := name[i+len("-pod"):]
	if !validUID(raw, '_') {
		return "", false
	}
	return strings.ReplaceAll(raw, "_", "-"), true
}

// containerSegment recognizes a container's cgroup name:
// "<runtime>-<id>.scope" (systemd), "<id>" or "<runtime>-<id>" (cgroupfs).
func containerSegment(seg string) (id string, ok bool) {
	name, scope := strings.CutSuffix(seg, ".scope")
	prefixed := false
	// The prefixes containerd, CRI-O and docker put before the ID.
	for _, p := range []string{"cri-containerd-", "crio-", "docker-"} {
		if rest, found := strings.CutPrefix(name, p); found {
			name, prefixed = rest, true
			break
		}
	}
	if scope && !prefixed {
		return "", false
	}
	return name, validContainerID(name)
}

// validUID reports whether s is a UUID in lower case whose groups are
// separated by sep: 8-4-4-4-12 hex digits.
func validUID(s string, sep byte) bool {
	if len(s) != 36 {
		return false
	}
	for i := range len(s) {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != sep {
				return false
			}
		default:
			if !isLowerHex(s[i]) {
				return false
			}
		}
	}
	return true
}

// validContainerID reports whether s is a container ID: 64 lowercase hex
// digits, as containerd, CRI-O and docker make them.
func validContainerID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := range len(s) {
		if !isLowerHex(s[i]) {
			return false
		}
	}
	return true
}

func isLowerHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f')
}

// ProcResolver finds the pod of a process from its cgroup.
type ProcResolver struct {
	// Root is the proc filesystem to read, DefaultProcRoot if empty. The
	// agent reads the host's /proc, so that the PIDs NVML reports (host
	// PIDs) exist there: it runs with hostPID, or mounts the host's /proc
	// elsewhere, e.g. /host/proc.
	Root string
}

// Resolve returns the pod UID and container ID of the process with the given
// PID. A process outside any pod container gives an error wrapping
// ErrNotInPod; a process that has exited gives one wrapping fs.ErrNotExist.
func (r ProcResolver) Resolve(pid uint32) (podUID, containerID string, err error) {
	root := r.Root
	if root == "" {
		root = DefaultProcRoot
	}
	path := filepath.Join(root, strconv.FormatUint(uint64(pid), 10), "cgroup")
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", "", fmt.Errorf("reading cgroup of process %d: %w (it may have exited; if no process is ever found, is the host's /proc mounted at %s?)", pid, err, root)
	}
	if err != nil {
		return "", "", fmt.Errorf("reading cgroup of process %d: %w", pid, err)
	}
	podUID, containerID, ok := PodFromCgroup(data)
	if !ok {
		return "", "", fmt.Errorf("process %d in cgroup %q: %w", pid, summarizeCgroup(data), ErrNotInPod)
	}
	return podUID, containerID, nil
}

// summarizeCgroup returns the first line of a cgroup file, cut short, for
// error messages.
func summarizeCgroup(data []byte) string {
	const maxLen = 160
	line, _, _ := strings.Cut(string(data), "\n")
	if len(line) > maxLen {
		line = line[:maxLen] + "..."
	}
	return line
}
