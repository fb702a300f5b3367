package main

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/unibo/webhookd/internal/testenv"
)

// These tests run the real binary, as Kubernetes does.

func binary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	return testenv.Binary(t)
}

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.RemoveBinary()
	os.Exit(code)
}

func TestBinaryBecomesReadyAndExitsZeroOnSIGTERM(t *testing.T) {
	bin := binary(t)
	cfg := testenv.Start(t).Config(t)
	cfg.Kafka.Partitions = 2
	p := testenv.StartBinary(t, bin, testenv.BinaryEnv(t, cfg))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.OpsAddr+"/healthz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("/healthz answered %d", resp.StatusCode)
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("/healthz never answered: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.WaitReady(t, 60*time.Second)

	code, err := p.Terminate(30 * time.Second)
	if err != nil || code != 0 {
		t.Fatalf("exit after SIGTERM: code %d, %v\n%s", code, err, testenv.Tail(p.Output(), 30))
	}
	for _, want := range []string{`"msg":"starting webhookd"`, `"msg":"consumer stopped"`, `"msg":"webhookd stopped"`} {
		if !strings.Contains(p.Output(), want) {
			t.Errorf("log lacks %s", want)
		}
	}
	// Durations carry their unit in JSON too: "25s", not 25.
	if !regexp.MustCompile(`"shutdown_timeout":"[0-9.]+(ms|s|m)"`).MatchString(p.Output()) {
		t.Errorf("log lacks shutdown_timeout as a duration string:\n%s", testenv.Tail(p.Output(), 30))
	}
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
	p := testenv.StartBinary(t, bin, append(os.Environ(), "WEBHOOKD_REDIS_PASSWORD="+secret,
		"WEBHOOKD_REDIS_ADDR=127.0.0.1:1", "WEBHOOKD_KAFKA_BROKERS=127.0.0.1:1"))
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.Output(), "starting webhookd") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if code, err := p.Terminate(10 * time.Second); err != nil || code != 0 {
		t.Errorf("exit after SIGTERM while Redis is unreachable: code %d, %v", code, err)
	}
	logs := p.Output()
	if !strings.Contains(logs, `"redis.password":"****`) {
		t.Errorf("startup line lacks the masked password:\n%s", logs)
	}
	if strings.Contains(logs, secret) {
		t.Errorf("secret logged:\n%s", logs)
	}
}
