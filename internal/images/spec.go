// Package images is gpufleet's one build definition for container images:
// which binary goes into which image, as which user, with which entrypoint,
// ports and labels. Two builders read it: Pack, which writes OCI image
// tarballs from the Go builds without a container engine (make images), and
// Dockerfile, which renders build/Dockerfile for users who build with
// Docker. A test keeps the committed Dockerfile equal to the rendered one.
package images

import "sort"

// Users the images run as.
const (
	// Nonroot is distroless' nonroot user, the default for gpufleet images.
	Nonroot = "65532:65532"
	// Root is for the gpu-agent only: it connects to the kubelet's
	// root-owned pod-resources and device-plugin sockets.
	Root = "0:0"
)

// Source is the project address put in every image's labels.
const Source = "https://github.com/gpufleet/gpufleet"

// Spec is one image: a binary of cmd/ and what surrounds it.
type Spec struct {
	// Binary is the command under cmd/; the image holds it at /Binary and
	// runs it as its entrypoint.
	Binary      string
	Title       string
	Description string
	// Doc is the path of the component's documentation in the repository.
	Doc string
	// CGO builds the binary with cgo (gpu-agent: go-nvml).
	CGO bool
	// Libc marks a dynamically linked binary: cgo ones, and purego ones
	// (the inference server dlopens CUDA without cgo, but still through
	// glibc's loader). Its image carries Debian's loader and libc; Pack
	// refuses a dynamically linked binary whose spec does not say so.
	Libc bool
	User string
	// Ports the binary listens on by default (EXPOSE).
	Ports []int
	// Cmd is the default argument list (CMD).
	Cmd []string
	// Env is set in the image's config, sorted by key when rendered.
	Env map[string]string
	// Dirs are repository directories copied into the image: source
	// (relative to the repository root) to absolute destination.
	Dirs map[string]string
	// CUDABase, when set, is the default Docker target's base image (the
	// CUDA runtime libraries); the engine-free build and the Docker target
	// named "<binary>-cpu" use the static base instead.
	CUDABase string
}

// Entrypoint is the image's ENTRYPOINT.
func (s Spec) Entrypoint() []string { return []string{"/" + s.Binary} }

// DirList returns Dirs sorted by source.
func (s Spec) DirList() [][2]string {
	var out [][2]string
	for src, dst := range s.Dirs {
		out = append(out, [2]string{src, dst})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

// EnvList returns Env as sorted KEY=VALUE pairs.
func (s Spec) EnvList() []string {
	var out []string
	for k, v := range s.Env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// ClientOnly are the commands that run on an admin's machine, never in the
// cluster: they ship as binaries (a krew plugin), not as images.
var ClientOnly = []string{"kubectl-gpufleet"}

// Specs lists every gpufleet image, one per directory of cmd/ that is not
// ClientOnly.
var Specs = []Spec{
	{
		Binary:      "gpu-agent",
		Title:       "gpufleet gpu-agent",
		Description: "Exports NVIDIA GPU metrics per GPU and per pod, and labels the node with its GPUs",
		Doc:         "docs/gpu-agent.md",
		CGO:         true,
		Libc:        true,
		User:        Root,
		Ports:       []int{9400},
	},
	{
		Binary:      "gpufleet",
		Title:       "gpufleet gpufleet",
		Description: "gpufleet admin CLI: GPU cost reports, local clusters, demo",
		Doc:         "README.md",
		User:        Nonroot,
	},
	{
		Binary:      "gpusim",
		Title:       "gpufleet gpusim",
		Description: "Replays GPU cluster traces through the real scheduler framework and reports GPU allocation and fragmentation",
		Doc:         "docs/gpusim.md",
		User:        Nonroot,
	},
	{
		Binary:      "inference-server",
		Title:       "gpufleet inference-server",
		Description: "Open Inference Protocol v2 model server with dynamic batching; CUDA and CPU backends",
		Doc:         "docs/inference-server.md",
		Libc:        true,
		User:        Nonroot,
		Ports:       []int{8000},
		Cmd:         []string{"--model-repository=/models"},
		Dirs:        map[string]string{"models": "/models"},
		// CUDA 12 is the last major version that supports the V100
		// (compute capability 7.0); 12.4 runs on drivers from 525 on.
		CUDABase: "nvidia/cuda:12.4.1-runtime-ubuntu22.04",
		Env:      map[string]string{"NVIDIA_DRIVER_CAPABILITIES": "compute,utility"},
	},
	{
		Binary:      "metrics-adapter",
		Title:       "gpufleet metrics-adapter",
		Description: "Serves requests_per_second and GPU load to the HorizontalPodAutoscaler (custom and external metrics APIs)",
		Doc:         "docs/metrics-adapter.md",
		User:        Nonroot,
		Ports:       []int{6443},
	},
	{
		Binary:      "model-router",
		Title:       "gpufleet model-router",
		Description: "One Open Inference Protocol v2 endpoint for many model Deployments: rules, canary weights, queue-aware balancing",
		Doc:         "docs/model-router.md",
		User:        Nonroot,
		Ports:       []int{8080},
	},
	{
		Binary:      "scheduler-plugin",
		Title:       "gpufleet scheduler-plugin",
		Description: "kube-scheduler with gpufleet's GPUPack plugin: whole and fractional GPU bin-packing",
		Doc:         "pkg/plugins/gpupack/README.md",
		User:        Nonroot,
		Ports:       []int{10259},
	},
}

// Lookup returns the spec of binary.
func Lookup(binary string) (Spec, bool) {
	for _, s := range Specs {
		if s.Binary == binary {
			return s, true
		}
	}
	return Spec{}, false
}

// Pause is the local node's sandbox image (hack/pause): not a gpufleet
// component, packed the same way because no registry is reachable there.
var Pause = Spec{
	Binary:      "pause",
	Title:       "gpufleet local-node pause",
	Description: "Sandbox container of gpufleet's local real node",
	Doc:         "hack/pause/main.go",
	User:        "65535:65535",
}

// PauseTag is the pause image's tag; the local node's containerd names it
// as its sandbox image.
const PauseTag = "3.10"
