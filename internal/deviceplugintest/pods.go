package deviceplugintest

import (
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gpufleet/gpufleet/pkg/names"
)

// Namespace is where the environment's test pods run.
const Namespace = "default"

// Shape is what a test pod asks for.
type Shape struct {
	// Milli is a share of one GPU per container; GPUs whole GPUs per
	// container (one of them is set, or neither: a pod without GPUs).
	Milli int64
	GPUs  int
	// Containers is the number of app containers (default 1), each asking
	// for the shape.
	Containers int
	// InitGPUs adds an init container asking for that many whole GPUs
	// (InitMilli: milli) that runs to completion before the app starts.
	InitGPUs  int
	InitMilli int64
}

func (s Shape) String() string {
	out := "no GPU"
	switch {
	case s.Milli > 0:
		out = strconv.FormatInt(s.Milli, 10) + "m"
	case s.GPUs > 0:
		out = strconv.Itoa(s.GPUs) + "gpu"
	}
	if s.Containers > 1 {
		out += "x" + strconv.Itoa(s.Containers)
	}
	if s.InitGPUs > 0 {
		out += "+init" + strconv.Itoa(s.InitGPUs) + "gpu"
	}
	if s.InitMilli > 0 {
		out += "+init" + strconv.FormatInt(s.InitMilli, 10) + "m"
	}
	return out
}

func gpuLimits(milli int64, gpus int) corev1.ResourceList {
	switch {
	case milli > 0:
		return corev1.ResourceList{names.ResourceGPUMilli: *resource.NewQuantity(milli, resource.DecimalSI)}
	case gpus > 0:
		return corev1.ResourceList{names.ResourceGPU: *resource.NewQuantity(int64(gpus), resource.DecimalSI)}
	}
	return nil
}

// Pod is a pod of shape, scheduled by gpufleet-scheduler. Its containers
// run the pause image: they hold their GPUs and do nothing, and stop at
// once on SIGTERM. The init container is gpu-agent's image printing its
// help: it exits 0 at once.
func Pod(name string, s Shape) *corev1.Pod {
	n := max(1, s.Containers)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: name, Labels: map[string]string{"app": "deviceplugin-test"}},
		Spec: corev1.PodSpec{
			SchedulerName:                 "gpufleet-scheduler",
			TerminationGracePeriodSeconds: ptr(int64(1)),
			AutomountServiceAccountToken:  new(bool),
		},
	}
	for i := range n {
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{
			Name:      "c" + strconv.Itoa(i),
			Image:     "docker.io/gpufleet/pause:3.10",
			Resources: corev1.ResourceRequirements{Limits: gpuLimits(s.Milli, s.GPUs)},
		})
	}
	if s.InitGPUs > 0 || s.InitMilli > 0 {
		pod.Spec.InitContainers = []corev1.Container{{
			Name:      "init",
			Image:     "docker.io/gpufleet/gpu-agent:dev",
			Args:      []string{"--help"},
			Resources: corev1.ResourceRequirements{Limits: gpuLimits(s.InitMilli, s.InitGPUs)},
		}}
	}
	return pod
}

// MixedShapes are n pods' shapes that all fit the node's 8 GPUs at once,
// in whatever order gpufleet-scheduler sees them: three whole GPUs (1 and
// 2) and shares of 10 to 50 milli (29 on average: about three GPUs for 100
// pods), so that two whole GPUs stay free however the shares land.
func MixedShapes(n int) []Shape {
	out := []Shape{{GPUs: 1}, {GPUs: 2}}
	shares := []int64{20, 30, 25, 40, 10, 50}
	for i := 0; len(out) < n; i++ {
		out = append(out, Shape{Milli: shares[i%len(shares)]})
	}
	return out[:n]
}

// NoDevice is shape without its GPUs: the baseline of the benchmark.
func NoDevice(s Shape) Shape { return Shape{Containers: s.Containers} }

func podName(prefix string, i int) string { return fmt.Sprintf("%s-%03d", prefix, i) }

func ptr[T any](v T) *T { return &v }
