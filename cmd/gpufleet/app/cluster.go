package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/gpufleet/gpufleet/pkg/gpumodel"
	"github.com/gpufleet/gpufleet/pkg/localcluster"
)

// Files a running local cluster keeps in its directory, beside the control
// plane's own (kubeconfig, pki/, etcd/, logs/).
const (
	pidFile   = "cluster.pid"
	stateFile = "cluster.json"
	logFile   = "cluster.log"
)

// clusterState is what `cluster up` records once the cluster is ready.
type clusterState struct {
	PID          int       `json:"pid"`
	APIServerURL string    `json:"apiServerURL"`
	Kubeconfig   string    `json:"kubeconfig"`
	ChildPIDs    []int     `json:"childPIDs"`
	Nodes        []string  `json:"nodes"`
	StartedAt    time.Time `json:"startedAt"`
}

type clusterOptions struct {
	Dir         string
	GPUNodes    int
	GPUModel    string
	GPUsPerNode int
	Controllers []string
	Timeout     time.Duration
	Foreground  bool
}

func newClusterOptions() *clusterOptions {
	return &clusterOptions{
		Dir:         filepath.Join("_output", "local"),
		GPUNodes:    2,
		GPUModel:    "V100M16",
		GPUsPerNode: 8,
		Controllers: localcluster.DefaultControllers,
		Timeout:     3 * time.Minute,
	}
}

func (o *clusterOptions) addDirFlag(fs *pflag.FlagSet) {
	fs.StringVar(&o.Dir, "dir", o.Dir, "Directory of the local cluster: kubeconfig, credentials, etcd data, logs.")
}

func (o *clusterOptions) addUpFlags(fs *pflag.FlagSet) {
	o.addDirFlag(fs)
	fs.IntVar(&o.GPUNodes, "gpu-nodes", o.GPUNodes, "Simulated GPU nodes to create (Node objects without a kubelet, labelled gpufleet.io/simulated=true).")
	fs.StringVar(&o.GPUModel, "gpu-model", o.GPUModel, "GPU model of the simulated nodes: "+strings.Join(gpumodel.Names(), ", ")+".")
	fs.IntVar(&o.GPUsPerNode, "gpus-per-node", o.GPUsPerNode, "GPUs per simulated node.")
	fs.StringSliceVar(&o.Controllers, "controllers", o.Controllers, "kube-controller-manager controllers to run.")
	fs.DurationVar(&o.Timeout, "timeout", o.Timeout, "How long to wait for the cluster to become ready.")
	fs.BoolVar(&o.Foreground, "foreground", false, "Run the cluster in this process until interrupted instead of in the background.")
}

// Validate returns every problem with the options, not just the first.
func (o *clusterOptions) Validate() error {
	var errs []error
	if o.Dir == "" {
		errs = append(errs, errors.New("--dir must not be empty"))
	}
	if o.GPUNodes < 0 {
		errs = append(errs, fmt.Errorf("--gpu-nodes=%d: must be 0 or more", o.GPUNodes))
	}
	if o.GPUsPerNode < 1 || o.GPUsPerNode > 16 {
		errs = append(errs, fmt.Errorf("--gpus-per-node=%d: must be between 1 and 16", o.GPUsPerNode))
	}
	if _, err := gpumodel.Lookup(o.GPUModel); err != nil {
		errs = append(errs, fmt.Errorf("--gpu-model: %w", err))
	}
	if len(o.Controllers) == 0 {
		errs = append(errs, errors.New("--controllers must name at least one controller"))
	}
	if o.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("--timeout=%s: must be positive", o.Timeout))
	}
	return errors.Join(errs...)
}

func (o *clusterOptions) path(name string) string { return filepath.Join(o.Dir, name) }

func newClusterCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Run a local Kubernetes control plane with simulated GPU nodes",
		Long: `A real etcd, kube-apiserver and kube-controller-manager on loopback ports,
with simulated GPU nodes (Node objects, no kubelet). For trying gpufleet out
and for its demo; not for production.`,
	}
	up := newClusterOptions()
	upCmd := &cobra.Command{
		Use:   "up",
		Short: "Start the local cluster in the background and wait until it is ready",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := up.Validate(); err != nil {
				return err
			}
			if up.Foreground {
				return up.runForeground(cmd.Context(), cmd.OutOrStdout())
			}
			return up.startBackground(cmd.OutOrStdout())
		},
	}
	up.addUpFlags(upCmd.Flags())

	down := newClusterOptions()
	downCmd := &cobra.Command{
		Use:   "down",
		Short: "Stop the local cluster and every process it started",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return down.stop(cmd.OutOrStdout())
		},
	}
	down.addDirFlag(downCmd.Flags())

	status := newClusterOptions()
	statusCmd := &cobra.Command{
		Use:   "status",
		Short: "Say whether the local cluster runs, and where",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pid, st := status.running()
			if pid == 0 {
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "no local cluster runs in %s\n", status.Dir)
				return err
			}
			return printState(cmd.OutOrStdout(), st)
		},
	}
	status.addDirFlag(statusCmd.Flags())

	cmd.AddCommand(upCmd, downCmd, statusCmd)
	return cmd
}

// running returns the pid of the cluster supervisor running in Dir (0 if
// none) and its recorded state, if it got that far.
func (o *clusterOptions) running() (int, *clusterState) {
	data, err := os.ReadFile(o.path(pidFile))
	if err != nil {
		return 0, nil
	}
	var pid int
	if _, err := fmt.Sscanf(string(data), "%d", &pid); err != nil || !isSupervisor(pid) {
		return 0, nil
	}
	st, _ := readState(o.path(stateFile))
	return pid, st
}

// isSupervisor says whether pid is a live `gpufleet cluster up --foreground`,
// so a stale pid file never makes us signal an unrelated process.
func isSupervisor(pid int) bool {
	if !localcluster.Alive(pid) {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := strings.Split(string(cmdline), "\x00")
	return containsAll(args, "cluster", "up", "--foreground")
}

func containsAll(args []string, want ...string) bool {
	have := map[string]bool{}
	for _, a := range args {
		have[a] = true
	}
	for _, w := range want {
		if !have[w] {
			return false
		}
	}
	return true
}

func readState(path string) (*clusterState, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	st := &clusterState{}
	if err := json.Unmarshal(data, st); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return st, nil
}

func printState(w io.Writer, st *clusterState) error {
	if st == nil {
		_, err := fmt.Fprintln(w, "local cluster is starting")
		return err
	}
	_, err := fmt.Fprintf(w, "local cluster ready (pid %d)\n  apiserver:  %s\n  kubeconfig: %s\n  nodes:      %s\n  try:        bin/kubectl --kubeconfig %s get nodes\n",
		st.PID, st.APIServerURL, st.Kubeconfig, strings.Join(st.Nodes, ", "), st.Kubeconfig)
	return err
}

// startBackground re-runs this command with --foreground as a detached
// supervisor and waits until it has written its ready state.
func (o *clusterOptions) startBackground(out io.Writer) error {
	if pid, _ := o.running(); pid != 0 {
		return fmt.Errorf("a local cluster already runs in %s (pid %d); stop it with `gpufleet cluster down --dir %s`", o.Dir, pid, o.Dir)
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return err
	}
	_ = os.Remove(o.path(stateFile))
	self, err := os.Executable()
	if err != nil {
		return err
	}
	log, err := os.Create(o.path(logFile))
	if err != nil {
		return err
	}
	defer func() { _ = log.Close() }()
	sup := exec.Command(self, append(os.Args[1:], "--foreground")...)
	sup.Stdout, sup.Stderr = log, log
	sup.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // outlive this shell command
	if err := sup.Start(); err != nil {
		return fmt.Errorf("starting the cluster supervisor: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- sup.Wait() }()

	ctx, cancel := context.WithTimeout(context.Background(), o.Timeout+30*time.Second)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if st, err := readState(o.path(stateFile)); err == nil && st.PID == sup.Process.Pid {
			return printState(out, st)
		}
		select {
		case err := <-exited:
			return fmt.Errorf("local cluster failed to start (%v); see %s:\n%s", err, o.path(logFile), localcluster.TailFile(o.path(logFile), 30))
		case <-ctx.Done():
			_ = sup.Process.Signal(syscall.SIGTERM)
			return fmt.Errorf("local cluster not ready after %s; see %s", o.Timeout, o.path(logFile))
		case <-tick.C:
		}
	}
}

// runForeground runs the cluster in this process until SIGINT or SIGTERM.
func (o *clusterOptions) runForeground(parent context.Context, out io.Writer) (err error) {
	if parent == nil {
		parent = context.Background()
	}
	ctx, stop := signal.NotifyContext(parent, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	logger := klog.FromContext(ctx)
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(o.path(pidFile), fmt.Appendf(nil, "%d\n", os.Getpid()), 0o644); err != nil {
		return err
	}
	defer func() {
		_ = os.Remove(o.path(stateFile))
		_ = os.Remove(o.path(pidFile))
	}()

	startCtx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	c, err := localcluster.Start(startCtx, localcluster.Options{Dir: o.Dir, StartTimeout: o.Timeout})
	if err != nil {
		return err
	}
	defer func() {
		logger.Info("Stopping local cluster")
		err = errors.Join(err, c.Stop())
	}()
	if err := c.StartControllerManager(startCtx, localcluster.ControllerManagerOptions{Controllers: o.Controllers}); err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return err
	}
	st := &clusterState{PID: os.Getpid(), APIServerURL: c.APIServerURL, Kubeconfig: c.KubeconfigPath, ChildPIDs: c.PIDs(), StartedAt: time.Now().UTC()}
	for i := range o.GPUNodes {
		name := fmt.Sprintf("gpu-node-%d", i)
		if _, err := localcluster.CreateGPUNode(startCtx, client, localcluster.GPUNode{Name: name, Model: o.GPUModel, GPUs: o.GPUsPerNode}); err != nil {
			return err
		}
		st.Nodes = append(st.Nodes, name)
	}
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	// Write then rename: a reader never sees half a state file.
	if err := os.WriteFile(o.path(stateFile+".tmp"), data, 0o644); err != nil {
		return err
	}
	if err := os.Rename(o.path(stateFile+".tmp"), o.path(stateFile)); err != nil {
		return err
	}
	logger.Info("Local cluster ready", "apiserver", c.APIServerURL, "kubeconfig", c.KubeconfigPath, "nodes", st.Nodes)
	if err := printState(out, st); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// stop ends the supervisor in Dir and checks that every child it started is
// gone.
func (o *clusterOptions) stop(out io.Writer) error {
	pid, st := o.running()
	if pid == 0 {
		_ = os.Remove(o.path(pidFile))
		_ = os.Remove(o.path(stateFile))
		_, err := fmt.Fprintf(out, "no local cluster runs in %s\n", o.Dir)
		return err
	}
	var children []int
	if st != nil {
		children = st.ChildPIDs
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("signalling cluster supervisor %d: %w", pid, err)
	}
	gone := func(pids ...int) wait.ConditionWithContextFunc {
		return func(context.Context) (bool, error) {
			for _, p := range pids {
				if localcluster.Alive(p) {
					return false, nil
				}
			}
			return true, nil
		}
	}
	ctx := context.Background()
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, gone(pid)); err != nil {
		// Its children die with it (PDEATHSIG), so this ends everything.
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 15*time.Second, true, gone(append(children, pid)...)); err != nil {
		return fmt.Errorf("processes of the local cluster still run after stopping it (pids %v)", append(children, pid))
	}
	_ = os.Remove(o.path(pidFile))
	_ = os.Remove(o.path(stateFile))
	_, err := fmt.Fprintf(out, "local cluster in %s stopped\n", o.Dir)
	return err
}
