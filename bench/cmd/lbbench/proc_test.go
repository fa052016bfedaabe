package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// statLine is a /proc/PID/stat line as Linux 6 writes it, with the given
// comm, parent, utime and stime.
func statLine(pid int, comm string, ppid int, utime, stime uint64) string {
	return fmt.Sprintf("%d (%s) S %d %d %d 0 -1 4194560 1270 0 0 0 %d %d 0 0 20 0 3 0 1234 10000000 2000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n",
		pid, comm, ppid, pid, pid, utime, stime)
}

func TestParseStat(t *testing.T) {
	for _, tc := range []struct {
		name, line string
		want       procStat
		err        string
	}{
		{"plain", statLine(42, "nginx", 1, 150, 2300), procStat{PID: 42, PPID: 1, UTime: 150, STime: 2300}, ""},
		{"comm with spaces and parens", statLine(7, "my (weird) proc", 3, 5, 6), procStat{PID: 7, PPID: 3, UTime: 5, STime: 6}, ""},
		{"comm looks like fields", statLine(8, ") S 99 1 1 0", 2, 10, 20), procStat{PID: 8, PPID: 2, UTime: 10, STime: 20}, ""},
		{"real kernel line", "1 (systemd) S 0 1 1 0 -1 4194560 31204 2167430 115 1029 197 389 7221 2063 20 0 1 0 34 22454272 3242 18446744073709551615 1 1 0 0 0 0 671173123 4096 1260 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
			procStat{PID: 1, PPID: 0, UTime: 197, STime: 389}, ""},
		{"empty", "", procStat{}, "no (comm)"},
		{"truncated", "5 (x) S 1 1 1 0", procStat{}, "fields after comm"},
		{"bad pid", "x (y) S 1 1 1 0 -1 0 0 0 0 0 1 2 0 0", procStat{}, "pid"},
		{"bad utime", "5 (y) S 1 1 1 0 -1 0 0 0 0 0 ab 2 0 0", procStat{}, `utime "ab"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStat([]byte(tc.line))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("parseStat = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestParseVmRSS(t *testing.T) {
	for _, tc := range []struct {
		name, status string
		want         int64
		err          bool
	}{
		{"process", "Name:\tnginx\nVmPeak:\t   20000 kB\nVmRSS:\t    6488 kB\nRssAnon:\t 1024 kB\n", 6488, false},
		{"kernel thread has none", "Name:\tkthreadd\nState:\tS (sleeping)\n", 0, false},
		{"odd unit", "VmRSS:\t6488 MB\n", 0, true},
		{"not a number", "VmRSS:\tlots kB\n", 0, true},
	} {
		got, err := parseVmRSS([]byte(tc.status))
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("%s: parseVmRSS = %d, %v; want %d, error %v", tc.name, got, err, tc.want, tc.err)
		}
	}
}

func TestStatusField(t *testing.T) {
	status := []byte("Name:\tload-balancer\nCpus_allowed:\t2\nCpus_allowed_list:\t1\n")
	for _, tc := range []struct {
		field, want string
		ok          bool
	}{
		{"Cpus_allowed_list", "1", true},
		{"Cpus_allowed", "2", true},
		{"Name", "load-balancer", true},
		{"VmRSS", "", false},
	} {
		if got, ok := statusField(status, tc.field); got != tc.want || ok != tc.ok {
			t.Errorf("statusField(%q) = %q, %v; want %q, %v", tc.field, got, ok, tc.want, tc.ok)
		}
	}
}

// fakeProc writes a /proc tree of processes: pid -> (ppid, utime, stime, rss).
func fakeProc(t *testing.T, procs map[int][4]int) procFS {
	t.Helper()
	root := t.TempDir()
	for pid, p := range procs {
		dir := filepath.Join(root, strconv.Itoa(pid))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		stat := statLine(pid, "p"+strconv.Itoa(pid), p[0], uint64(p[1]), uint64(p[2]))
		status := fmt.Sprintf("Name:\tp%d\nVmRSS:\t%d kB\nCpus_allowed_list:\t1\n", pid, p[3])
		if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(stat), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "status"), []byte(status), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Entries that are not processes are passed over.
	if err := os.WriteFile(filepath.Join(root, "loadavg"), []byte("0.1 0.2 0.3 1/2 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return procFS{root: root}
}

func TestProcTree(t *testing.T) {
	// 100 is an nginx master with two workers, one of which forked a helper;
	// 200 is unrelated.
	fs := fakeProc(t, map[int][4]int{
		1:   {0, 0, 0, 0},
		100: {1, 10, 20, 4000},
		101: {100, 300, 900, 6000},
		102: {100, 5, 7, 6100},
		103: {101, 1, 1, 100},
		200: {1, 999, 999, 99999},
	})
	procs, err := fs.tree(100)
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, p := range procs {
		pids = append(pids, p.PID)
	}
	if pids[0] != 100 {
		t.Errorf("tree starts at %d, want the root 100", pids[0])
	}
	slices.Sort(pids)
	if !slices.Equal(pids, []int{100, 101, 102, 103}) {
		t.Errorf("tree(100) = %v, want 100 101 102 103", pids)
	}

	rss, err := fs.rss(100)
	if err != nil || rss != 4000+6000+6100+100 {
		t.Errorf("rss(100) = %d, %v; want %d", rss, err, 4000+6000+6100+100)
	}
	s, err := fs.sampleCPU(100)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.since(treeSample{}); got != (cpuTicks{User: 316, Sys: 928}) {
		t.Errorf("whole tree CPU = %+v, want 316 user, 928 sys", got)
	}
	cpus, err := fs.cpusAllowed(101)
	if err != nil || cpus != "1" {
		t.Errorf("cpusAllowed(101) = %q, %v; want 1", cpus, err)
	}
	if _, err := fs.tree(555); err == nil || !strings.Contains(err.Error(), "555") {
		t.Errorf("tree of a missing process: %v, want an error naming it", err)
	}
}

func TestTreeSampleSince(t *testing.T) {
	for _, tc := range []struct {
		name          string
		before, after treeSample
		want          cpuTicks
	}{
		{"both sampled", treeSample{1: {10, 20}, 2: {5, 5}}, treeSample{1: {15, 30}, 2: {6, 9}}, cpuTicks{6, 14}},
		{"worker started in between counts whole", treeSample{1: {10, 20}}, treeSample{1: {10, 25}, 3: {2, 3}}, cpuTicks{2, 8}},
		{"worker exited in between is lost", treeSample{1: {10, 20}, 2: {50, 50}}, treeSample{1: {11, 21}}, cpuTicks{1, 1}},
		{"pid reused by a new process", treeSample{4: {100, 100}}, treeSample{4: {3, 4}}, cpuTicks{3, 4}},
		{"idle", treeSample{1: {10, 20}}, treeSample{1: {10, 20}}, cpuTicks{}},
	} {
		if got := tc.after.since(tc.before); got != tc.want {
			t.Errorf("%s: since = %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestProcSelf(t *testing.T) {
	// The real /proc: this test process is its own tree's root.
	fs := procFS{root: "/proc"}
	pid := os.Getpid()
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	procs, err := fs.tree(pid)
	if err != nil || procs[0].PID != pid {
		t.Fatalf("tree(self) = %v, %v", procs, err)
	}
	if rss, err := fs.rss(pid); err != nil || rss <= 0 {
		t.Errorf("rss(self) = %d, %v; want a positive size", rss, err)
	}
	if cpus, err := fs.cpusAllowed(pid); err != nil || cpuCount(cpus) < 1 {
		t.Errorf("cpusAllowed(self) = %q, %v", cpus, err)
	}
}

func TestCPUCount(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"1", 1}, {"0-1", 2}, {"0-3,8", 5}, {"0,2,4", 3}, {"", 0}, {"x", 0}, {"3-1", 0},
	} {
		if got := cpuCount(tc.in); got != tc.want {
			t.Errorf("cpuCount(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestParseCoreTimes(t *testing.T) {
	stat := []byte("cpu  177520 275 162793 433352 944 0 75843 205 0 0\n" +
		"cpu0 76326 121 93217 215927 161 0 39692 109 0 0\n" +
		"cpu1 101193 153 69576 217424 782 10 36151 96 0 0\n" +
		"intr 13768965 0 0\n")
	for _, tc := range []struct {
		name string
		cpus []int
		want coreTimes
		err  string
	}{
		{"one CPU", []int{1}, coreTimes{
			Busy:    101193 + 153 + 69576 + 10 + 36151 + 96,
			Total:   101193 + 153 + 69576 + 217424 + 782 + 10 + 36151 + 96,
			Softirq: 10 + 36151,
		}, ""},
		{"two CPUs add up", []int{0, 1}, coreTimes{
			Busy:    (76326 + 121 + 93217 + 39692 + 109) + (101193 + 153 + 69576 + 10 + 36151 + 96),
			Total:   (76326 + 121 + 93217 + 215927 + 161 + 39692 + 109) + (101193 + 153 + 69576 + 217424 + 782 + 10 + 36151 + 96),
			Softirq: 39692 + 10 + 36151,
		}, ""},
		{"the aggregate line is not cpu0", []int{0}, coreTimes{
			Busy: 76326 + 121 + 93217 + 39692 + 109, Total: 76326 + 121 + 93217 + 215927 + 161 + 39692 + 109, Softirq: 39692,
		}, ""},
		{"missing CPU", []int{7}, coreTimes{}, "0 of CPUs [7] found"},
	} {
		got, err := parseCoreTimes(stat, tc.cpus)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: parseCoreTimes = %+v, %v; want %+v", tc.name, got, err, tc.want)
		}
	}
	if _, err := parseCoreTimes([]byte("cpu1 1 2 x 4 5 6 7 8 0 0\n"), []int{1}); err == nil || !strings.Contains(err.Error(), `"x"`) {
		t.Errorf("bad field: %v, want an error naming it", err)
	}
}

func TestParseCPUList(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []int
	}{
		{"1", []int{1}}, {"0-2", []int{0, 1, 2}}, {"0,3-4", []int{0, 3, 4}}, {"", nil}, {"x,2", []int{2}}, {"3-1", nil},
	} {
		if got := parseCPUList(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("parseCPUList(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
