package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/rishichirchi/Load-Balancee/proxy"
)

// accessLogFlags are -access-log and -access-log-format.
type accessLogFlags struct {
	dest   string
	format string
}

func (f *accessLogFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.dest, "access-log", "", "write a line per request to this file (appended; reopened on SIGUSR1), or - for stdout (empty: off)")
	fs.StringVar(&f.format, "access-log-format", string(proxy.AccessLogCombined), "access log lines: combined (nginx's, plus request time and backend) or json")
}

// apply checks the flags and puts them into o; the binary opens the file
// when it starts (openLogFile).
func (f *accessLogFlags) apply(o *options) error {
	format, err := proxy.ParseAccessLogFormat(f.format)
	if err != nil {
		return invalid("invalid -access-log-format %q: want combined or json", f.format)
	}
	o.accessLog = f.dest
	o.proxy.AccessLogFormat = format
	return nil
}

// logFile is the access log's destination: a file opened for appending,
// which can be reopened under its name (after logrotate moved it) or
// another's, or stdout. It is safe for concurrent use.
type logFile struct {
	mu   sync.Mutex
	path string // "-": w is stdout, never reopened
	w    io.Writer
	f    *os.File
}

// openLogFile opens path ("-": stdout) for the access log.
func openLogFile(path string, stdout io.Writer) (*logFile, error) {
	l := &logFile{path: path, w: stdout}
	if path == "-" {
		return l, nil
	}
	f, err := openAppend(path)
	if err != nil {
		return nil, err
	}
	l.f, l.w = f, f
	return l, nil
}

func openAppend(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("access log %q: %w", path, err)
	}
	return f, nil
}

// Write implements io.Writer.
func (l *logFile) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// reopen opens path (the current one when empty) and writes there from
// now on, closing the file written until now. On failure nothing changes.
func (l *logFile) reopen(path string) error {
	if path == "" {
		path = l.path
	}
	if path == "-" || l.path == "-" {
		if path != l.path {
			return fmt.Errorf("access log %q: switching to or from stdout takes a restart", path)
		}
		return nil // stdout is not reopened
	}
	f, err := openAppend(path)
	if err != nil {
		return err
	}
	return l.use(path, f)
}

// use writes to f, opened from path, from now on, and closes the file
// written until now.
func (l *logFile) use(path string, f *os.File) error {
	l.mu.Lock()
	old := l.f
	l.path, l.f, l.w = path, f, f
	l.mu.Unlock()
	return old.Close()
}

// name returns the path written to now.
func (l *logFile) name() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.path
}

// close closes the file (not stdout).
func (l *logFile) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f, l.w = nil, io.Discard
	return err
}
