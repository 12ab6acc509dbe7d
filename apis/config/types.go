package config

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// GPUPackArgs configures the GPUPack plugin.
type GPUPackArgs struct {
	metav1.TypeMeta

	// Strategy scores nodes: GPUFleet, FGD, BestFit or Spread.
	Strategy string
	// WorkloadWindow is how many of the most recent pods FGD and GPUFleet
	// learn the typical pod shapes from.
	WorkloadWindow int32
	// TypicalPodCoveragePercent keeps the most frequent shapes that together
	// make up this percentage of the window.
	TypicalPodCoveragePercent int32
}

// DeepCopyInto copies the receiver into out.
func (in *GPUPackArgs) DeepCopyInto(out *GPUPackArgs) { *out = *in }

// DeepCopy returns a copy.
func (in *GPUPackArgs) DeepCopy() *GPUPackArgs {
	if in == nil {
		return nil
	}
	out := new(GPUPackArgs)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (in *GPUPackArgs) DeepCopyObject() runtime.Object { return in.DeepCopy() }
