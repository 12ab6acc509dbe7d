package localcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// ImagePath returns the tarball make images writes for binary, or an error
// saying it is not built.
func ImagePath(binary string) (string, error) {
	dir, err := ImagesDir()
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, binary+".tar")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("image %s is not built (run make images)", p)
	}
	return p, nil
}

// ImagePaths returns the tarballs of ImagePath for binaries.
func ImagePaths(binaries ...string) ([]string, error) {
	out := make([]string, 0, len(binaries))
	for _, b := range binaries {
		p, err := ImagePath(b)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// RealClusterUnavailable says why StartRealCluster with the images of
// binaries cannot run on this machine (RealNodeSupported, or an image
// make images has not built, the pause image included); nil when it can.
func RealClusterUnavailable(binaries ...string) error {
	if err := RealNodeSupported(); err != nil {
		return err
	}
	_, err := ImagePaths(append([]string{"pause"}, binaries...)...)
	return err
}

// ApplyKustomization runs `kubectl apply -k dir` against the cluster, as a
// cluster admin installs manifests (kubectl built from binDir's tools,
// DefaultBinDir when empty).
func (c *Cluster) ApplyKustomization(ctx context.Context, binDir, dir string) error {
	if binDir == "" {
		var err error
		if binDir, err = DefaultBinDir(); err != nil {
			return err
		}
	}
	bins, err := EnsureBinaries(ctx, binDir, Kubectl)
	if err != nil {
		return err
	}
	if out, err := exec.CommandContext(ctx, bins[Kubectl], "--kubeconfig", c.KubeconfigPath, "apply", "-k", dir).CombinedOutput(); err != nil {
		return fmt.Errorf("kubectl apply -k %s: %v\n%s", dir, err, out)
	}
	return nil
}

// StartRealCluster starts what a real node needs around it and the node:
// a control plane reachable from pods (opts.NodeAddress, this machine's
// address when empty), kube-controller-manager (RealNodeControllers unless
// kcm names others), the stock kube-scheduler, and the node with the pause
// image added to node.Images. On error nothing is left running.
func StartRealCluster(ctx context.Context, opts Options, kcm ControllerManagerOptions, node RealNodeOptions) (c *Cluster, n *RealNode, err error) {
	if err := RealNodeSupported(); err != nil {
		return nil, nil, err
	}
	pause, err := ImagePath("pause")
	if err != nil {
		return nil, nil, err
	}
	node.Images = append([]string{pause}, node.Images...)
	if opts.NodeAddress == "" {
		if opts.NodeAddress, err = NodeAddress(); err != nil {
			return nil, nil, err
		}
	}
	if c, err = Start(ctx, opts); err != nil {
		return nil, nil, fmt.Errorf("starting the control plane: %w", err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, c.Stop())
			c = nil
		}
	}()
	if len(kcm.Controllers) == 0 {
		kcm.Controllers = RealNodeControllers
	}
	if err := c.StartControllerManager(ctx, kcm); err != nil {
		return c, nil, fmt.Errorf("starting kube-controller-manager: %w", err)
	}
	if err := c.StartScheduler(ctx); err != nil {
		return c, nil, fmt.Errorf("starting kube-scheduler: %w", err)
	}
	if n, err = c.StartRealNode(ctx, node); err != nil {
		return c, nil, fmt.Errorf("starting the real node: %w", err)
	}
	return c, n, nil
}
