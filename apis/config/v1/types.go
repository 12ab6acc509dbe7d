package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// GPUPackArgs configures the GPUPack plugin.
type GPUPackArgs struct {
	metav1.TypeMeta `json:",inline"`

	// Strategy scores nodes: GPUFleet (default), FGD, BestFit or Spread.
	Strategy *string `json:"strategy,omitempty"`
	// WorkloadWindow is how many of the most recent pods FGD and GPUFleet
	// learn the typical pod shapes from. Default 10000.
	WorkloadWindow *int32 `json:"workloadWindow,omitempty"`
	// TypicalPodCoveragePercent keeps the most frequent pod shapes that
	// together make up this percentage of the window. Default 95.
	TypicalPodCoveragePercent *int32 `json:"typicalPodCoveragePercent,omitempty"`
}

// DeepCopyInto copies the receiver into out.
func (in *GPUPackArgs) DeepCopyInto(out *GPUPackArgs) {
	*out = *in
	if in.Strategy != nil {
		out.Strategy = new(*in.Strategy)
	}
	if in.WorkloadWindow != nil {
		out.WorkloadWindow = new(*in.WorkloadWindow)
	}
	if in.TypicalPodCoveragePercent != nil {
		out.TypicalPodCoveragePercent = new(*in.TypicalPodCoveragePercent)
	}
}

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
