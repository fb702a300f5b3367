package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/unibo/webhookd/config"
	"github.com/unibo/webhookd/internal/testenv"
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

// `config validate` reports every problem at once: the file's, the
// environment's, and each WEBHOOKD_* variable that names no option (which
// the worker only warns of); WEBHOOKD_TEST_* variables are the test suite's.
func TestConfigValidateReportsEveryProblemAndUnknownVariables(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	_ = os.WriteFile(good, []byte("kafka:\n  partitions: 6\n"), 0o600)
	_ = os.WriteFile(bad, []byte("kafka:\n  group_idd: x\ndelivery:\n  timeout: 30\n"), 0o600)
	t.Setenv("WEBHOOKD_TEST_SOMETHING", "1")
	if out, err := runRoot(t, "config", "validate", "-f", good); err != nil {
		t.Fatalf("a WEBHOOKD_TEST_ variable failed validation: %v %s", err, out)
	}

	t.Setenv("WEBHOOKD_REDIS_DATABASE", "5")
	_, err := runRoot(t, "config", "validate", "-f", good)
	want := good + " is valid, but the environment is not:\n" +
		"WEBHOOKD_REDIS_DATABASE: no option has this variable, so it is ignored; did you mean WEBHOOKD_REDIS_DB (redis.db)?"
	if err == nil || err.Error() != want {
		t.Fatalf("got:\n%v\nwant:\n%s", err, want)
	}

	_, err = runRoot(t, "config", "validate", "-f", bad)
	want = "the configuration (" + bad + " and the environment) is not valid:\n" +
		"kafka.group_idd: unknown key in " + bad + "; did you mean kafka.group_id (WEBHOOKD_KAFKA_GROUP_ID)?\n" +
		"delivery.timeout (WEBHOOKD_DELIVERY_TIMEOUT): 30 has no unit; write a duration such as 30s\n" +
		"WEBHOOKD_REDIS_DATABASE: no option has this variable, so it is ignored; did you mean WEBHOOKD_REDIS_DB (redis.db)?"
	if err == nil || err.Error() != want {
		t.Fatalf("got:\n%v\nwant:\n%s", err, want)
	}
}

// Without -f, `config validate` checks the defaults and the environment
// alone: what a deployment configured only by environment (a Kubernetes
// ConfigMap) runs with.
func TestConfigValidateWithoutAFileChecksTheEnvironment(t *testing.T) {
	t.Setenv("WEBHOOKD_KAFKA_PARTITIONS", "6")
	if out, err := runRoot(t, "config", "validate"); err != nil || out != "valid: defaults and the environment\n" {
		t.Fatalf("config validate with a good environment: %v %q", err, out)
	}
	// The global --config is the file, as for the worker.
	file := filepath.Join(t.TempDir(), "c.yaml")
	_ = os.WriteFile(file, []byte("delivery:\n  timeout: 5s\n"), 0o600)
	if out, err := runRoot(t, "--config", file, "config", "validate"); err != nil || out != "valid: "+file+" and the environment\n" {
		t.Fatalf("--config FILE config validate: %v %q", err, out)
	}

	t.Setenv("WEBHOOKD_DELIVERY_TIMEOUT", "30")
	_, err := runRoot(t, "config", "validate")
	want := "the configuration (defaults and the environment) is not valid:\n" +
		`delivery.timeout (WEBHOOKD_DELIVERY_TIMEOUT): "30" has no unit; write a duration such as 30s`
	if err == nil || err.Error() != want {
		t.Fatalf("got:\n%v\nwant:\n%s", err, want)
	}
}

// `config print` masks every secret option, and warns of unknown variables.
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
	t.Setenv("WEBHOOKD_REDIS_DATABASE", "5")
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
	for _, want := range []string{"redis.password = ****lear", "admin.token = ****cdef", "kafka.sasl.username = webhookd",
		"warning: WEBHOOKD_REDIS_DATABASE: no option has this variable, so it is ignored; did you mean WEBHOOKD_REDIS_DB (redis.db)?"} {
		if strings.Count(out, want) != 1 {
			t.Errorf("config print has %d times %q, want once:\n%s", strings.Count(out, want), want, out)
		}
	}
}

// The worker starts despite a variable that names no option, and logs one
// warning for it, with the nearest option's variable; none for the test
// suite's WEBHOOKD_TEST_* variables.
func TestBinaryWarnsOfEachUnknownVariableAtStartup(t *testing.T) {
	bin := binary(t)
	p := testenv.StartBinary(t, bin, append(os.Environ(), "WEBHOOKD_REDIS_DATABASE=5", "WEBHOOKD_TEST_NOT_AN_OPTION=1",
		"WEBHOOKD_REDIS_ADDR=127.0.0.1:1", "WEBHOOKD_KAFKA_BROKERS=127.0.0.1:1"))
	const warning = `"msg":"environment variable names no option; ignored","variable":"WEBHOOKD_REDIS_DATABASE","did_you_mean":"WEBHOOKD_REDIS_DB"`
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.Output(), warning) && !p.Exited() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if code, err := p.Terminate(10 * time.Second); err != nil || code != 0 {
		t.Errorf("exit after SIGTERM: code %d, %v", code, err)
	}
	logs := p.Output()
	if strings.Count(logs, warning) != 1 {
		t.Errorf("want one warning %s:\n%s", warning, logs)
	}
	if strings.Contains(logs, `"variable":"WEBHOOKD_TEST_`) {
		t.Errorf("warned of a test suite variable:\n%s", logs)
	}
}
