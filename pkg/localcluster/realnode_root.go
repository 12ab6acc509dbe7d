package localcluster

import (
	"fmt"
	"os"
	"slices"
	"syscall"
)

// shareKubeletRoot makes dir, the kubelet's root directory, a shared mount
// point of its own (a recursive bind mount onto itself) before the kubelet
// starts.
//
// The kubelet does this itself at start when dir is not one yet (pod
// volumes mounted under it must propagate), while other goroutines of its
// already create their sockets there: each socket is bound under a
// temporary name and renamed, and a rename whose two path lookups straddle
// the new mount fails with EXDEV, "invalid cross-device link", and the
// kubelet exits ("Failed to create listener for pods API endpoint"; the
// same flake as k3s-io/k3s#4042). Mounted beforehand, the kubelet finds it
// shared and mounts nothing. The sweep unmounts it with everything else
// under the root (unmountUnder(KubeletRoot)).
func shareKubeletRoot(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	ms, err := mounts()
	if err != nil {
		return fmt.Errorf("reading the mount table: %w", err)
	}
	if !slices.ContainsFunc(ms, func(m mount) bool { return m.point == dir }) {
		if err := syscall.Mount(dir, dir, "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
			return fmt.Errorf("bind-mounting the kubelet's root %s onto itself: %w", dir, err)
		}
	}
	if err := syscall.Mount("", dir, "", syscall.MS_SHARED|syscall.MS_REC, ""); err != nil {
		return fmt.Errorf("making the kubelet's root %s a shared mount: %w", dir, err)
	}
	return nil
}
