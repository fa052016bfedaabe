package main

import (
	"bytes"
	"os"
	"runtime"
	"strings"
)

// machineInfo describes where the benchmark ran, for the report.
type machineInfo struct {
	CPUModel  string `json:"cpu_model"`
	Cores     int    `json:"cores"`
	Kernel    string `json:"kernel"`
	OS        string `json:"os"`
	GoVersion string `json:"go_version"`
	LoadAvg   string `json:"load_average_at_start"`
	NoFile    int    `json:"open_file_limit"`
}

func readMachine(noFile int) machineInfo {
	m := machineInfo{
		CPUModel:  cpuModel(readFile("/proc/cpuinfo")),
		Cores:     onlineCPUs(),
		Kernel:    strings.TrimSpace(readFile("/proc/sys/kernel/osrelease")),
		OS:        osName(readFile("/etc/os-release")),
		GoVersion: runtime.Version(),
		NoFile:    noFile,
	}
	if f := strings.Fields(readFile("/proc/loadavg")); len(f) >= 3 {
		m.LoadAvg = strings.Join(f[:3], " ")
	}
	return m
}

// onlineCPUs counts the machine's CPUs. runtime.NumCPU counts only those
// this process may run on, which is one when the harness itself is pinned.
func onlineCPUs() int {
	if n := cpuCount(strings.TrimSpace(readFile("/sys/devices/system/cpu/online"))); n > 0 {
		return n
	}
	return runtime.NumCPU()
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// cpuModel returns the first "model name" of /proc/cpuinfo.
func cpuModel(cpuinfo string) string {
	for _, line := range strings.Split(cpuinfo, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// osName returns PRETTY_NAME from /etc/os-release.
func osName(osRelease string) string {
	for _, line := range strings.Split(osRelease, "\n") {
		if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
			return string(bytes.Trim([]byte(v), `"`))
		}
	}
	return "unknown"
}
