// Package validation checks GPUPack plugin args and reports every problem
// with its field path.
package validation

import (
	"slices"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/gpufleet/gpufleet/apis/config"
)

// Strategies are the accepted strategy names (gpupack.Strategies; the
// plugin's tests check the two lists agree).
var Strategies = []string{"GPUFleet", "FGD", "BestFit", "Spread", "Random", "DotProduct", "GPUPacking", "GPUClustering"}

// MaxWorkloadWindow bounds the memory the typical-pod window takes.
const MaxWorkloadWindow = 1_000_000

// ValidateGPUPackArgs returns every invalid field of args under path.
func ValidateGPUPackArgs(path *field.Path, args *config.GPUPackArgs) field.ErrorList {
	var errs field.ErrorList
	if !slices.Contains(Strategies, args.Strategy) {
		errs = append(errs, field.NotSupported(path.Child("strategy"), args.Strategy, Strategies))
	}
	if args.WorkloadWindow < 1 || args.WorkloadWindow > MaxWorkloadWindow {
		errs = append(errs, field.Invalid(path.Child("workloadWindow"), args.WorkloadWindow, "must be between 1 and 1000000 pods"))
	}
	if args.TypicalPodCoveragePercent < 1 || args.TypicalPodCoveragePercent > 100 {
		errs = append(errs, field.Invalid(path.Child("typicalPodCoveragePercent"), args.TypicalPodCoveragePercent, "must be between 1 and 100"))
	}
	return errs
}
