package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// printTable writes the report for a terminal: a table per scenario, the
// headline ratios and memory with idle connections.
func printTable(w io.Writer, rep *report) {
	fmt.Fprintf(w, "\n%s, %d cores, %s; %s\n", rep.Machine.CPUModel, rep.Machine.Cores, rep.Machine.Kernel, rep.Settings.Pinning)
	fmt.Fprintf(w, "load: %s, %s runs after %s warm-up, median of %d rounds; backends: %s\n",
		rep.Settings.LoadGenerator, rep.Settings.Duration, rep.Settings.Warmup, rep.Settings.Rounds, rep.Settings.Backend)
	if rep.Settings.Together {
		fmt.Fprintln(w, "together: the peers of each round ran at the same moment, sharing the proxy CPU, each with its own load generator")
	}
	for _, p := range rep.Peers {
		if p.Status != "measured" {
			fmt.Fprintf(w, "%s: %s: %s\n", p.Name, p.Status, p.Reason)
		}
	}
	for _, sc := range rep.Scenarios {
		fmt.Fprintf(w, "\n%s: %s\n", sc.Name, sc.Description)
		writeAligned(w, scenarioTable(sc))
	}
	if h := headlineTable(rep); len(h.rows) > 0 {
		fmt.Fprintln(w, "\nbalancer CPU per request against its peers (×: ratio, below 1 is less CPU)")
		writeAligned(w, h)
	}
	if rep.Idle != nil && len(rep.Idle.Results) > 0 {
		fmt.Fprintln(w, "\nmemory (RSS of the process tree) with idle keep-alive connections")
		writeAligned(w, idleTable(rep.Idle))
	}
	for _, warning := range rep.Warnings {
		fmt.Fprintf(w, "\nwarning: %s", warning)
	}
	fmt.Fprintf(w, "\nelapsed %s\n", rep.Elapsed)
}

func writeAligned(w io.Writer, t table) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(t.header, "\t"))
	for _, r := range t.rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
}
