package localcluster

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

const (
	tempDirPrefix = "gpufleet-cp-"
	ownerFile     = "owner.pid"
)

// newTempDir makes a control plane's temporary directory and records which
// process owns it. It first removes directories whose owner died without
// cleaning up (a test binary killed on timeout runs no cleanup).
func newTempDir(base string) (string, error) {
	sweepStaleDirs(base)
	dir, err := os.MkdirTemp(base, tempDirPrefix)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		_ = os.RemoveAll(dir)
		return "", fmt.Errorf("recording the owner of %s: %w", dir, err)
	}
	return dir, nil
}

// sweepStaleDirs removes base/gpufleet-cp-* directories whose owner process
// is gone. A directory without an owner file is being created right now, or
// is very old; only the latter is removed.
func sweepStaleDirs(base string) {
	matches, _ := filepath.Glob(filepath.Join(base, tempDirPrefix+"*"))
	for _, dir := range matches {
		data, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			if st, serr := os.Stat(dir); serr == nil && time.Since(st.ModTime()) > 24*time.Hour {
				_ = os.RemoveAll(dir)
			}
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err == nil && !Alive(pid) {
			_ = os.RemoveAll(dir)
		}
	}
}
