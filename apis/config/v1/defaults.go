package v1

// Defaults of GPUPackArgs.
const (
	DefaultStrategy                  = "GPUFleet"
	DefaultWorkloadWindow            = 10000
	DefaultTypicalPodCoveragePercent = 95
)

// SetDefaults_GPUPackArgs fills unset fields.
func SetDefaults_GPUPackArgs(obj *GPUPackArgs) { //nolint:revive // the name is the apimachinery convention
	if obj.Strategy == nil {
		obj.Strategy = new(DefaultStrategy)
	}
	if obj.WorkloadWindow == nil {
		obj.WorkloadWindow = new(int32(DefaultWorkloadWindow))
	}
	if obj.TypicalPodCoveragePercent == nil {
		obj.TypicalPodCoveragePercent = new(int32(DefaultTypicalPodCoveragePercent))
	}
}
