package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
)

// chartFile is the chart's name in the results directory.
const chartFile = "cpu-per-request.svg"

// writeResults writes latest.json, latest.md and the chart into dir. Each
// file is written whole to a temporary name and renamed, so a reader never
// sees half a report.
func writeResults(dir string, rep *report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	var md bytes.Buffer
	writeMarkdown(&md, rep)
	files := map[string][]byte{
		"latest.json": append(js, '\n'),
		"latest.md":   md.Bytes(),
		chartFile:     chartSVG(rep),
	}
	for name, data := range files {
		tmp := filepath.Join(dir, name+".tmp")
		if err := os.WriteFile(tmp, data, 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	return nil
}
