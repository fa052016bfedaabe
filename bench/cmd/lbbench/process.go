package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// process is a server the harness started: a backend, a proxy. It runs in
// its own process group, so stopping it also stops any workers it forked
// (nginx), and it dies with the harness.
type process struct {
	name string
	cmd  *exec.Cmd
	log  string // file that holds its stdout and stderr
	done chan struct{}
	err  error // set when done is closed
}

// startProcess runs argv (after the pin prefix, such as taskset -c 1) with
// its output appended to logPath.
func startProcess(name string, pin []string, argv []string, env []string, logPath string) (*process, error) {
	full := append(append([]string{}, pin...), argv...)
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(full[0], full[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %v", name, err)
	}
	p := &process{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// PID is the process's id: with a taskset prefix, taskset has exec'd the
// server, so it is the server's own.
func (p *process) PID() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended, and how.
func (p *process) exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// waitListening polls addr until it accepts a TCP connection, the process
// exits, or the deadline passes.
func (p *process) waitListening(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if gone, err := p.exited(); gone {
			return fmt.Errorf("%s exited before listening on %s (%v); its log %s says: %s", p.name, addr, err, p.log, tail(p.log))
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not listening on %s after %v: %v; its log %s says: %s", p.name, addr, timeout, err, p.log, tail(p.log))
		}
		time.Sleep(20 * time.Millisecond) // polling a port with a deadline
	}
}

// stop asks the process to end (SIGTERM), waits up to grace, then kills
// its whole process group.
func (p *process) stop(grace time.Duration) {
	if gone, _ := p.exited(); !gone {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
		}
	}
	// Workers that outlive their master (or a master that ignored TERM).
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// tail returns the last lines of a log file, for error messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	b = bytes.TrimSpace(b)
	if len(b) > 800 {
		b = b[len(b)-800:]
	}
	if len(b) == 0 {
		return "(empty)"
	}
	return string(b)
}

// runTool runs a load generator or a version command to its end and
// returns its standard output. It is bounded: the run's length and a
// minute of slack.
func runTool(ctx context.Context, pin []string, path string, args []string, runFor time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, runFor+time.Minute)
	defer cancel()
	full := append(append(append([]string{}, pin...), path), args...)
	cmd := exec.CommandContext(ctx, full[0], full[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String() + " " + stdout.String())
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("%s did not finish in %v", path, runFor+time.Minute)
		}
		return nil, fmt.Errorf("%s %s: %v: %s", path, strings.Join(args, " "), err, truncateOutput([]byte(msg)))
	}
	return stdout.Bytes(), nil
}

// freePort returns a TCP port on 127.0.0.1 that nothing listens on now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// childEnv is the environment for the servers and tools the harness starts:
// its own, less the variables that would change how a Go server runs, so
// GOMAXPROCS follows the CPU affinity as it does for a user.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "GOMAXPROCS", "GOGC", "GOMEMLIMIT", "GODEBUG":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// writeTemp writes data to a new file in dir named by pattern (as
// os.CreateTemp names it) and returns its path.
func writeTemp(dir, pattern string, data []byte) (string, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return "", err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}
