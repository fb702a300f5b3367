package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unibo/webhookd/config"
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

// `config print` masks every secret option.
func TestConfigPrintMasksEverySecretOption(t *testing.T) {
	env := map[string]string{
		"WEBHOOKD_KAFKA_SASL_PASSWORD":                    "kafka-sasl-password-in-clear",
		"WEBHOOKD_REDIS_PASSWORD":                         "redis-password-in-clear",
		"WEBHOOKD_SUBSCRIPTIONS_ENCRYPTION_KEY":           "ZW5jcnlwdGlvbi1rZXktaW4tY2xlYXItMzItYnl0ZXM=",
		"WEBHOOKD_SUBSCRIPTIONS_PREVIOUS_ENCRYPTION_KEYS": "cHJldmlvdXMta2V5LW9uZS1pbi1jbGVhci0zMmJ5dGU=,cHJldmlvdXMta2V5LXR3by1pbi1jbGVhci0zMmJ5dGU=",
		"WEBHOOKD_ADMIN_TOKEN":                            "admin-token-in-clear-0123456789abcdef",
	}
	for _, o := range config.Options {
		if _, ok := env[o.Env()]; o.Secret && !ok {
			t.Errorf("secret option %s: give it a value in this test", o.Key)
		}
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	t.Setenv("WEBHOOKD_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
	t.Setenv("WEBHOOKD_KAFKA_SASL_USERNAME", "webhookd")
	out, err := runRoot(t, "config", "print")
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range env {
		for _, part := range strings.Split(v, ",") {
			if strings.Contains(out, part) || strings.Contains(out, part[:len(part)-4]) {
				t.Errorf("%s printed in clear:\n%s", k, out)
			}
		}
	}
	for _, want := range []string{"redis.password = ****lear", "admin.token = ****cdef", "kafka.sasl.username = webhookd"} {
		if !strings.Contains(out, want) {
			t.Errorf("config print lacks %q:\n%s", want, out)
		}
	}
}
