package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/unibo/webhookd/config"
	"github.com/unibo/webhookd/internal/testenv"
)

// These tests run the real binary, as Kubernetes does.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func binary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "webhookd-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "webhookd")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = errors.New(string(out))
		}
	})
	if buildErr != nil {
		t.Fatalf("build: %v", buildErr)
	}
	return binPath
}

// safeBuffer collects a process's output while it runs.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// workerEnv is the environment that points the binary at cfg.
func workerEnv(cfg config.Config) []string {
	return append(os.Environ(),
		"WEBHOOKD_KAFKA_BROKERS="+strings.Join(cfg.Kafka.Brokers, ","),
		"WEBHOOKD_KAFKA_TOPICS="+strings.Join(cfg.Kafka.Topics, ","),
		"WEBHOOKD_KAFKA_GROUP_ID="+cfg.Kafka.GroupID,
		"WEBHOOKD_KAFKA_PARTITIONS=2",
		"WEBHOOKD_KAFKA_SESSION_TIMEOUT=6s",
		"WEBHOOKD_KAFKA_HEARTBEAT_INTERVAL=500ms",
		"WEBHOOKD_REDIS_ADDR="+cfg.Redis.Addr,
		"WEBHOOKD_REDIS_KEY_PREFIX="+cfg.Redis.KeyPrefix,
		"WEBHOOKD_OPS_ADDR="+cfg.Ops.Addr,
		"WEBHOOKD_SHUTDOWN_TIMEOUT=5s",
	)
}

func TestBinaryBecomesReadyAndExitsZeroOnSIGTERM(t *testing.T) {
	bin := binary(t)
	env := testenv.Start(t)
	cfg := env.Config(t)
	cfg.Ops.Addr = freeAddr(t)

	var out safeBuffer
	cmd := exec.Command(bin)
	cmd.Env = workerEnv(cfg)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()

	if code := get(t, "http://"+cfg.Ops.Addr+"/healthz", 10*time.Second, func(int) bool { return true }); code != 200 {
		t.Fatalf("/healthz answered %d", code)
	}
	get(t, "http://"+cfg.Ops.Addr+"/readyz", 60*time.Second, func(c int) bool { return c == 200 })

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no exit 30s after SIGTERM\n%s", out.String())
	}
	for _, want := range []string{`"msg":"starting webhookd"`, `"msg":"consumer stopped"`, `"msg":"webhookd stopped"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("log lacks %s", want)
		}
	}
}

// get polls url until accept(status) or timeout, and returns the last status.
func get(t *testing.T, url string, timeout time.Duration, accept func(int) bool) int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := 0
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		cancel()
		if err == nil {
			_ = resp.Body.Close()
			last = resp.StatusCode
			if accept(last) {
				return last
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: no acceptable answer within %s (last status %d)", url, timeout, last)
	return last
}

func TestBinaryRejectsInvalidConfigNamingTheKey(t *testing.T) {
	bin := binary(t)
	cases := map[string]string{
		"WEBHOOKD_KAFKA_PARTITIONS=0":       "kafka.partitions",
		"WEBHOOKD_DELIVERY_TIMEOUT=forever": "delivery.timeout",
		"WEBHOOKD_KAFKA_BROKERS=":           "kafka.brokers",
	}
	for setting, key := range cases {
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(), setting)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() == 0 {
			t.Errorf("%s: exit %v, want non-zero", setting, err)
		}
		if !strings.Contains(string(out), key) {
			t.Errorf("%s: output does not name %s: %s", setting, key, out)
		}
	}
	path := filepath.Join(t.TempDir(), "bad.yaml")
	_ = os.WriteFile(path, []byte("kafka:\n  partitons: 3\n"), 0o600)
	out, err := exec.Command(bin, "--config", path).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "partitons") {
		t.Errorf("misspelt key in file: %v %s", err, out)
	}
}

// The effective config is logged at startup, secrets masked.
func TestBinaryLogsEffectiveConfigWithSecretsMasked(t *testing.T) {
	bin := binary(t)
	const secret = "redis-password-do-not-log"
	var out safeBuffer
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "WEBHOOKD_REDIS_PASSWORD="+secret, "WEBHOOKD_REDIS_ADDR=127.0.0.1:1",
		"WEBHOOKD_OPS_ADDR="+freeAddr(t), "WEBHOOKD_KAFKA_BROKERS=127.0.0.1:1")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "starting webhookd") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM while Redis is unreachable: %v", err)
	}
	logs := out.String()
	if !strings.Contains(logs, `"redis.password":"****`) {
		t.Errorf("startup line lacks the masked password:\n%s", logs)
	}
	if strings.Contains(logs, secret) {
		t.Errorf("secret logged:\n%s", logs)
	}
}
