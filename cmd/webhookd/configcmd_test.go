package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runRoot(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRootCmd(&out, &errOut)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String() + errOut.String(), err
}

func TestConfigValidateNamesTheBadKey(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	_ = os.WriteFile(good, []byte("kafka:\n  partitions: 6\n"), 0o600)
	_ = os.WriteFile(bad, []byte("kafka:\n  partitions: 0\ndelivery:\n  timeout: soon\n"), 0o600)

	if out, err := runRoot(t, "config", "validate", "-f", good); err != nil || !strings.Contains(out, "valid") {
		t.Fatalf("good file: %v %s", err, out)
	}
	_, err := runRoot(t, "config", "validate", "-f", bad)
	if err == nil || !strings.Contains(err.Error(), "delivery.timeout") {
		t.Fatalf("bad file: %v", err)
	}
}

func TestConfigPrintMasksSecrets(t *testing.T) {
	t.Setenv("WEBHOOKD_REDIS_PASSWORD", "a-long-redis-password")
	out, err := runRoot(t, "config", "print")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "a-long-redis-password") || !strings.Contains(out, "redis.password = ****word") {
		t.Fatalf("config print:\n%s", out)
	}
}
