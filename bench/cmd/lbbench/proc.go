package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// procFS reads process figures from a /proc tree. Root is "/proc" on a
// real machine and a fixture directory in tests.
type procFS struct{ root string }

// procStat is what the harness takes from /proc/PID/stat.
type procStat struct {
	PID   int
	PPID  int
	UTime uint64 // clock ticks in user mode (field 14)
	STime uint64 // clock ticks in kernel mode (field 15)
}

// parseStat parses one /proc/PID/stat line. The command name (field 2) is
// in parentheses and may itself hold spaces and parentheses, so the fields
// after it are counted from the last ')'.
func parseStat(line []byte) (procStat, error) {
	open := bytes.IndexByte(line, '(')
	end := bytes.LastIndexByte(line, ')')
	if open < 1 || end < open {
		return procStat{}, fmt.Errorf("malformed stat line %q: no (comm)", truncate(line))
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(line[:open])))
	if err != nil {
		return procStat{}, fmt.Errorf("malformed stat line %q: pid: %v", truncate(line), err)
	}
	// rest[0] is field 3 (state), so field N is rest[N-3].
	rest := strings.Fields(string(line[end+1:]))
	if len(rest) < 13 {
		return procStat{}, fmt.Errorf("malformed stat line %q: %d fields after comm, want at least 13", truncate(line), len(rest))
	}
	st := procStat{PID: pid}
	if st.PPID, err = strconv.Atoi(rest[4-3]); err != nil {
		return procStat{}, fmt.Errorf("malformed stat line %q: ppid %q", truncate(line), rest[1])
	}
	if st.UTime, err = strconv.ParseUint(rest[14-3], 10, 64); err != nil {
		return procStat{}, fmt.Errorf("malformed stat line %q: utime %q", truncate(line), rest[11])
	}
	if st.STime, err = strconv.ParseUint(rest[15-3], 10, 64); err != nil {
		return procStat{}, fmt.Errorf("malformed stat line %q: stime %q", truncate(line), rest[12])
	}
	return st, nil
}

func truncate(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "..."
	}
	return string(b)
}

// statusField returns the value of a "Name:\tvalue" line of
// /proc/PID/status, trimmed, and whether it was there.
func statusField(status []byte, name string) (string, bool) {
	for line := range bytes.SplitSeq(status, []byte{'\n'}) {
		k, v, ok := bytes.Cut(line, []byte{':'})
		if ok && string(k) == name {
			return string(bytes.TrimSpace(v)), true
		}
	}
	return "", false
}

// parseVmRSS returns the resident set size in KiB from /proc/PID/status.
// A process without VmRSS (a zombie, a kernel thread) has 0.
func parseVmRSS(status []byte) (int64, error) {
	v, ok := statusField(status, "VmRSS")
	if !ok {
		return 0, nil
	}
	num, unit, _ := strings.Cut(v, " ")
	if unit != "kB" {
		return 0, fmt.Errorf("VmRSS %q: want a figure in kB", v)
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("VmRSS %q: %v", v, err)
	}
	return n, nil
}

// stat reads /proc/PID/stat.
func (fs procFS) stat(pid int) (procStat, error) {
	b, err := os.ReadFile(filepath.Join(fs.root, strconv.Itoa(pid), "stat"))
	if err != nil {
		return procStat{}, err
	}
	return parseStat(b)
}

// status reads /proc/PID/status.
func (fs procFS) status(pid int) ([]byte, error) {
	return os.ReadFile(filepath.Join(fs.root, strconv.Itoa(pid), "status"))
}

// tree returns root and every process descended from it, root first. A
// process that exits while the tree is read is left out.
func (fs procFS) tree(root int) ([]procStat, error) {
	entries, err := os.ReadDir(fs.root)
	if err != nil {
		return nil, err
	}
	children := map[int][]procStat{}
	var top *procStat
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := fs.stat(pid)
		if err != nil {
			continue // gone since ReadDir, or not readable
		}
		if pid == root {
			top = &st
		}
		children[st.PPID] = append(children[st.PPID], st)
	}
	if top == nil {
		return nil, fmt.Errorf("process %d: not running", root)
	}
	out := []procStat{*top}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i].PID]...)
	}
	return out, nil
}

// cpuTicks is CPU time in clock ticks, split as the kernel accounts it.
type cpuTicks struct{ User, Sys uint64 }

// treeSample is the CPU time of each process of a tree at one moment.
type treeSample map[int]cpuTicks

// sampleCPU records the CPU time of every process in root's tree.
func (fs procFS) sampleCPU(root int) (treeSample, error) {
	procs, err := fs.tree(root)
	if err != nil {
		return nil, err
	}
	s := treeSample{}
	for _, p := range procs {
		s[p.PID] = cpuTicks{User: p.UTime, Sys: p.STime}
	}
	return s, nil
}

// since returns the CPU time the tree spent between before and s. A
// process that started in between counts whole; one that exited in
// between is lost (its time went to its parent's cutime, which the kernel
// reports only after the parent reaps it).
func (s treeSample) since(before treeSample) cpuTicks {
	var d cpuTicks
	for pid, now := range s {
		was := before[pid]
		if now.User >= was.User && now.Sys >= was.Sys {
			d.User += now.User - was.User
			d.Sys += now.Sys - was.Sys
		} else { // the pid was reused by a new process
			d.User += now.User
			d.Sys += now.Sys
		}
	}
	return d
}

// rss returns the resident memory of root's whole tree, in KiB.
func (fs procFS) rss(root int) (int64, error) {
	procs, err := fs.tree(root)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, p := range procs {
		b, err := fs.status(p.PID)
		if err != nil {
			continue
		}
		kib, err := parseVmRSS(b)
		if err != nil {
			return 0, fmt.Errorf("process %d: %v", p.PID, err)
		}
		total += kib
	}
	return total, nil
}

// cpusAllowed returns the CPU list a process may run on ("1", "0-1").
func (fs procFS) cpusAllowed(pid int) (string, error) {
	b, err := fs.status(pid)
	if err != nil {
		return "", err
	}
	v, ok := statusField(b, "Cpus_allowed_list")
	if !ok {
		return "", fmt.Errorf("process %d: no Cpus_allowed_list in status", pid)
	}
	return v, nil
}

// clockTicks returns the kernel's clock ticks per second (USER_HZ), by
// `getconf CLK_TCK`; 100, the value on every Linux architecture in use,
// when getconf is missing.
func clockTicks() int64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err != nil {
		return 100
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil || n <= 0 {
		return 100
	}
	return n
}

// coreTimes is what /proc/stat says some CPUs did, in clock ticks.
type coreTimes struct {
	Total   uint64 // every state, idle included
	Busy    uint64 // everything but idle and iowait
	Softirq uint64 // interrupts and softirqs (network receive work)
}

func (c coreTimes) since(before coreTimes) coreTimes {
	return coreTimes{Total: c.Total - before.Total, Busy: c.Busy - before.Busy, Softirq: c.Softirq - before.Softirq}
}

// parseCoreTimes sums the "cpuN" lines of /proc/stat for the given CPUs:
// cpuN user nice system idle iowait irq softirq steal guest guest_nice.
// Guest time is already in user and nice, so it is not added again.
func parseCoreTimes(stat []byte, cpus []int) (coreTimes, error) {
	want := map[string]bool{}
	for _, c := range cpus {
		want["cpu"+strconv.Itoa(c)] = true
	}
	var t coreTimes
	found := 0
	for line := range bytes.SplitSeq(stat, []byte{'\n'}) {
		f := strings.Fields(string(line))
		if len(f) < 9 || !want[f[0]] {
			continue
		}
		var v [8]uint64
		for i := range v {
			n, err := strconv.ParseUint(f[i+1], 10, 64)
			if err != nil {
				return coreTimes{}, fmt.Errorf("/proc/stat %s: field %d %q: %v", f[0], i+1, f[i+1], err)
			}
			v[i] = n
		}
		user, nice, system, idle, iowait, irq, softirq, steal := v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]
		t.Busy += user + nice + system + irq + softirq + steal
		t.Total += user + nice + system + idle + iowait + irq + softirq + steal
		t.Softirq += irq + softirq
		found++
	}
	if found != len(want) {
		return coreTimes{}, fmt.Errorf("/proc/stat: %d of CPUs %v found", found, cpus)
	}
	return t, nil
}

// coreTimes reads /proc/stat for the given CPUs; none gives the zero value.
func (fs procFS) coreTimes(cpus []int) (coreTimes, error) {
	if len(cpus) == 0 {
		return coreTimes{}, nil
	}
	b, err := os.ReadFile(filepath.Join(fs.root, "stat"))
	if err != nil {
		return coreTimes{}, err
	}
	return parseCoreTimes(b, cpus)
}
