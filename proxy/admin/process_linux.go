package admin

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// writeOSProcess writes CPU time, memory and file descriptors, read from the
// kernel as client_golang's process collector does.
func writeOSProcess(e *exposition) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		cpu := float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
		e.family("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.")
		e.float("process_cpu_seconds_total", "", cpu)
	}
	if statm, err := os.ReadFile("/proc/self/statm"); err == nil {
		if f := strings.Fields(string(statm)); len(f) >= 2 {
			if pages, err := strconv.ParseUint(f[1], 10, 64); err == nil {
				e.family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.")
				e.uint("process_resident_memory_bytes", "", pages*uint64(os.Getpagesize()))
			}
		}
	}
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		e.family("process_open_fds", "gauge", "Number of open file descriptors.")
		e.uint("process_open_fds", "", uint64(len(fds)))
	}
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil {
		e.family("process_max_fds", "gauge", "Maximum number of open file descriptors.")
		e.uint("process_max_fds", "", rl.Cur)
	}
}
