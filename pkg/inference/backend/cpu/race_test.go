//go:build race

package cpu

// raceEnabled is whether the tests run under the race detector, whose
// sync.Pool drops a random quarter of the values put in it.
const raceEnabled = true
