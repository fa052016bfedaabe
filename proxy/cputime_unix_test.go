//go:build unix

package proxy

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time, user and system, the test process has
// used so far. Benchmarks report it per operation: on a machine shared with
// other work it moves far less than the wall-clock time does.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
