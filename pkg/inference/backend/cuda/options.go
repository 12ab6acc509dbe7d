package cuda

// Option configures Open.
type Option func(*config)

type config struct {
	cudart, cublas []string // library paths that replace the search
	dirs           []string // searched before anything else
	device         int
}

// WithLibraries makes Open load the CUDA runtime and cuBLAS from these
// paths instead of searching (search.go). An empty string keeps the search
// for that library.
func WithLibraries(cudart, cublas string) Option {
	return func(c *config) {
		if cudart != "" {
			c.cudart = []string{cudart}
		}
		if cublas != "" {
			c.cublas = []string{cublas}
		}
	}
}

// WithDevice selects the CUDA device by ordinal (default 0, the first
// device CUDA_VISIBLE_DEVICES leaves visible).
func WithDevice(ordinal int) Option {
	return func(c *config) { c.device = ordinal }
}

// WithLibraryDirs makes Open look in these directories before anywhere else
// (search.go), e.g. a wheel's site-packages/nvidia/cu13/lib.
func WithLibraryDirs(dirs ...string) Option {
	return func(c *config) { c.dirs = append(c.dirs, dirs...) }
}
