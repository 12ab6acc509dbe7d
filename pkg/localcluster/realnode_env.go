package localcluster

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ContainerEnv returns the environment of a running container on the real
// node, as its own first process sees it (/proc/PID/environ of the oldest
// process in the container's cgroup). containerID is the pod status's
// "containerd://<id>" or the bare ID. Tests use it to check what a device
// plugin and the runtime really gave a container.
func ContainerEnv(containerID string) (map[string]string, error) {
	pid, id, err := containerInit(containerID)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "environ"))
	if err != nil {
		return nil, fmt.Errorf("reading the environment of container %s (PID %d): %w", id, pid, err)
	}
	env := map[string]string{}
	for _, kv := range bytes.Split(data, []byte{0}) {
		if k, v, ok := strings.Cut(string(kv), "="); ok {
			env[k] = v
		}
	}
	return env, nil
}

// KillContainer SIGKILLs a running container's first process on the real
// node, as a crash (or kill -9) would: the container exits and the kubelet
// restarts it by the pod's policy. It returns the PID it killed.
func KillContainer(containerID string) (int, error) {
	pid, id, err := containerInit(containerID)
	if err != nil {
		return 0, err
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return 0, fmt.Errorf("killing container %s (PID %d): %w", id, pid, err)
	}
	return pid, nil
}

// containerInit finds the oldest process in the cgroup of containerID
// ("containerd://<id>" or the bare ID): the container's own first process.
func containerInit(containerID string) (pid int, id string, err error) {
	_, id, found := strings.Cut(containerID, "://")
	if !found {
		id = containerID
	}
	if len(id) < 12 {
		return 0, id, fmt.Errorf("container ID %q is too short", containerID)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, id, err
	}
	best, bestStart := -1, uint64(0)
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cg, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cgroup"))
		if err != nil || !bytes.Contains(cg, []byte(id)) {
			continue
		}
		start, err := processStart(pid)
		if err != nil {
			continue
		}
		if best < 0 || start < bestStart {
			best, bestStart = pid, start
		}
	}
	if best < 0 {
		return 0, id, fmt.Errorf("no process of container %s runs on this machine", id)
	}
	return best, id, nil
}

// processStart is a process's start time in clock ticks after boot.
func processStart(pid int) (uint64, error) {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	// The command name is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	fields := strings.Fields(string(stat[i+1:]))
	// Field 22 of stat (starttime) is the 20th after the command name.
	if len(fields) < 20 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	return strconv.ParseUint(fields[19], 10, 64)
}
