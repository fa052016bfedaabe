package admin

import (
	"runtime/metrics"
	"time"
)

// writeProcess writes the Go runtime and process metrics that Prometheus
// client libraries export under the same names, so the usual dashboards and
// alerts for Go services work unchanged.
func writeProcess(e *exposition, started time.Time) {
	samples := []metrics.Sample{
		{Name: "/sched/goroutines:goroutines"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/total:bytes"},
		{Name: "/gc/cycles/total:gc-cycles"},
	}
	metrics.Read(samples)
	value := func(i int) uint64 {
		if samples[i].Value.Kind() == metrics.KindUint64 {
			return samples[i].Value.Uint64()
		}
		return 0
	}
	e.family("go_goroutines", "gauge", "Number of goroutines that currently exist.")
	e.uint("go_goroutines", "", value(0))
	e.family("go_memstats_heap_alloc_bytes", "gauge", "Number of heap bytes allocated and still in use.")
	e.uint("go_memstats_heap_alloc_bytes", "", value(1))
	e.family("go_memstats_sys_bytes", "gauge", "Number of bytes obtained from the system.")
	e.uint("go_memstats_sys_bytes", "", value(2))
	e.family("go_gc_cycles_total", "counter", "Completed garbage collection cycles.")
	e.uint("go_gc_cycles_total", "", value(3))

	e.family("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.")
	e.float("process_start_time_seconds", "", float64(started.UnixMilli())/1e3)
	writeOSProcess(e)
}
