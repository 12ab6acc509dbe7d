package v1

import (
	"k8s.io/apimachinery/pkg/conversion"
	"k8s.io/apimachinery/pkg/runtime"
	schedv1 "k8s.io/kube-scheduler/config/v1"

	"github.com/gpufleet/gpufleet/apis/config"
)

// SchemeGroupVersion is kubescheduler.config.k8s.io/v1.
var SchemeGroupVersion = schedv1.SchemeGroupVersion

var (
	localSchemeBuilder = &schedv1.SchemeBuilder
	// AddToScheme adds the v1 types, their defaults and conversions.
	AddToScheme = localSchemeBuilder.AddToScheme
)

func init() {
	localSchemeBuilder.Register(addKnownTypes, addDefaultingFuncs, addConversionFuncs)
}

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(SchemeGroupVersion, &GPUPackArgs{})
	return nil
}

func addDefaultingFuncs(s *runtime.Scheme) error {
	s.AddTypeDefaultingFunc(&GPUPackArgs{}, func(obj any) { SetDefaults_GPUPackArgs(obj.(*GPUPackArgs)) })
	return nil
}

func addConversionFuncs(s *runtime.Scheme) error {
	if err := s.AddConversionFunc((*GPUPackArgs)(nil), (*config.GPUPackArgs)(nil), func(a, b any, _ conversion.Scope) error {
		return Convert_v1_GPUPackArgs_To_config_GPUPackArgs(a.(*GPUPackArgs), b.(*config.GPUPackArgs))
	}); err != nil {
		return err
	}
	return s.AddConversionFunc((*config.GPUPackArgs)(nil), (*GPUPackArgs)(nil), func(a, b any, _ conversion.Scope) error {
		return Convert_config_GPUPackArgs_To_v1_GPUPackArgs(a.(*config.GPUPackArgs), b.(*GPUPackArgs))
	})
}

// Convert_v1_GPUPackArgs_To_config_GPUPackArgs converts defaulted v1 args to
// the internal form (unset fields become zero values, which validation
// rejects).
func Convert_v1_GPUPackArgs_To_config_GPUPackArgs(in *GPUPackArgs, out *config.GPUPackArgs) error { //nolint:revive // conversion naming convention
	*out = config.GPUPackArgs{}
	if in.Strategy != nil {
		out.Strategy = *in.Strategy
	}
	if in.WorkloadWindow != nil {
		out.WorkloadWindow = *in.WorkloadWindow
	}
	if in.TypicalPodCoveragePercent != nil {
		out.TypicalPodCoveragePercent = *in.TypicalPodCoveragePercent
	}
	return nil
}

// Convert_config_GPUPackArgs_To_v1_GPUPackArgs converts internal args to v1.
func Convert_config_GPUPackArgs_To_v1_GPUPackArgs(in *config.GPUPackArgs, out *GPUPackArgs) error { //nolint:revive // conversion naming convention
	*out = GPUPackArgs{
		Strategy:                  new(in.Strategy),
		WorkloadWindow:            new(in.WorkloadWindow),
		TypicalPodCoveragePercent: new(in.TypicalPodCoveragePercent),
	}
	return nil
}
