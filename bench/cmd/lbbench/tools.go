package main

import (
	"os"
	"os/exec"
	"strings"
)

// lookTool finds an executable on PATH, or in the sbin directories where
// Debian installs nginx and HAProxy (not on a normal user's PATH).
func lookTool(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
		p := dir + "/" + name
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// firstLine runs a version command and returns the first non-empty line of
// what it prints on either stream ("nginx -v" prints to stderr).
func firstLine(path string, args ...string) string {
	out, _ := exec.Command(path, args...).CombinedOutput()
	for _, line := range strings.Split(string(out), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			return line
		}
	}
	return "unknown"
}
