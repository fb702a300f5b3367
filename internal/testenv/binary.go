package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/unibo/webhookd/config"
)

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

// Binary returns the webhookd binary, built once per test process from this
// module's cmd/webhookd. Call RemoveBinary from TestMain when done.
func Binary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "webhookd-bin-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "webhookd")
		// A package path, not a directory: it builds from any test's directory.
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/unibo/webhookd/cmd/webhookd").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build ./cmd/webhookd: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// RemoveBinary deletes what Binary built.
func RemoveBinary() {
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
}

// BinaryEnv is the environment that makes the binary run with exactly cfg:
// the test's environment without any WEBHOOKD_* variable, plus one variable
// per key whose value differs from the default.
func BinaryEnv(t testing.TB, cfg config.Config) []string {
	t.Helper()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, config.EnvPrefix+"_") {
			env = append(env, kv)
		}
	}
	vars, err := envVars("", reflect.ValueOf(cfg))
	if err != nil {
		t.Fatalf("config to environment: %v", err)
	}
	defaults, err := envVars("", reflect.ValueOf(config.Defaults()))
	if err != nil {
		t.Fatalf("config to environment: %v", err)
	}
	isDefault := map[string]bool{}
	for _, kv := range defaults {
		isDefault[kv] = true
	}
	for _, kv := range vars {
		if !isDefault[kv] {
			env = append(env, kv)
		}
	}
	return env
}

// envVars renders every field of a config struct as KEY=value, in the
// format config.Load reads back (lists comma-separated, durations as 1m30s).
func envVars(prefix string, v reflect.Value) ([]string, error) {
	var out []string
	for i := 0; i < v.NumField(); i++ {
		key := v.Type().Field(i).Tag.Get("mapstructure")
		if prefix != "" {
			key = prefix + "." + key
		}
		f := v.Field(i)
		var val string
		switch x := f.Interface().(type) {
		case time.Duration:
			val = x.String()
		case []string:
			val = strings.Join(x, ",")
		case string:
			val = x
		case bool:
			val = strconv.FormatBool(x)
		case int, int64, int32, float64:
			val = fmt.Sprint(x)
		default:
			if f.Kind() != reflect.Struct {
				return nil, fmt.Errorf("%s: cannot render a %s as an environment variable", key, f.Type())
			}
			sub, err := envVars(key, f)
			if err != nil {
				return nil, err
			}
			out = append(out, sub...)
			continue
		}
		out = append(out, config.EnvName(key)+"="+val)
	}
	return out, nil
}

// Process is one run of the webhookd binary, its output captured.
type Process struct {
	// OpsAddr is where its /healthz and /readyz answer.
	OpsAddr string
	cmd     *exec.Cmd
	out     *LockedBuffer
	exited  chan struct{}
	waitErr error
}

// StartBinary runs bin with env (see BinaryEnv) and WEBHOOKD_OPS_ADDR set to
// a free port. It does not wait for readiness. When the test ends, a process
// still running is killed.
func StartBinary(t testing.TB, bin string, env []string) *Process {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()

	p := &Process{OpsAddr: addr, out: &LockedBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(bin)
	p.cmd.Env = append(env[:len(env):len(env)], config.EnvName("ops.addr")+"="+addr)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	// If the test process dies, the worker goes with it.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start webhookd: %v", err)
	}
	go func() { p.waitErr = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		if !p.Exited() {
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Output is everything the process wrote so far (its JSON log lines).
func (p *Process) Output() string { return p.out.String() }

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// Kill sends SIGKILL and waits until the process is gone.
func (p *Process) Kill(t testing.TB) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !p.Exited() {
		t.Fatalf("SIGKILL pid %d: %v", p.Pid(), err)
	}
	<-p.exited
}

// Terminate sends SIGTERM and returns the exit code, or -1 with an error if
// the process has not exited within timeout (it is then killed).
func (p *Process) Terminate(timeout time.Duration) (int, error) {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !p.Exited() {
		return -1, err
	}
	select {
	case <-p.exited:
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return -1, fmt.Errorf("no exit %s after SIGTERM", timeout)
	}
	var exit *exec.ExitError
	if errors.As(p.waitErr, &exit) {
		return exit.ExitCode(), nil
	}
	if p.waitErr != nil {
		return -1, p.waitErr
	}
	return 0, nil
}

// Readyz fetches /readyz: its status code (0 when it does not answer) and
// body.
func (p *Process) Readyz() (int, string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.OpsAddr+"/readyz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer func() { _ = resp.Body.Close() }()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// WaitReady waits until /readyz answers 200, failing the test (with the
// process's output) if it exits or timeout passes first.
func (p *Process) WaitReady(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if code, _ := p.Readyz(); code == http.StatusOK {
			return
		}
		if p.Exited() {
			t.Fatalf("webhookd exited before becoming ready (%v):\n%s", p.waitErr, Tail(p.Output(), 40))
		}
		if time.Now().After(deadline) {
			code, body := p.Readyz()
			t.Fatalf("webhookd not ready after %s (/readyz %d %s):\n%s", timeout, code, body, Tail(p.Output(), 40))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Tail is the last n lines of s, each cut to 500 bytes.
func Tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for i, l := range lines {
		if len(l) > 500 {
			lines[i] = fmt.Sprintf("%s… (%d bytes)", l[:500], len(l))
		}
	}
	return strings.Join(lines, "\n")
}

// LockedBuffer collects what a process or goroutine writes while the test
// reads it.
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
