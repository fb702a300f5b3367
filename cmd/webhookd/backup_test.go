package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/unibo/webhookd/delivery"
	"github.com/unibo/webhookd/internal/testenv"
	"github.com/unibo/webhookd/subscriptions"
)

// The README's backup and restore, on the real Redis and Kafka when the
// environment names them: `list -o yaml --reveal-secrets` → the table is
// lost → `apply -f backup.yaml` → the worker's deliveries carry signatures
// that verify with the secrets the partners hold (the original one, and
// during a rotation the previous one too), and the API key.
func TestBinaryBackupRestoreKeepsSigningSecrets(t *testing.T) {
	bin := binary(t)
	env := testenv.Start(t)
	cfg := env.Config(t)
	key := make([]byte, subscriptions.EncryptionKeyBytes)
	_, _ = rand.Read(key)
	cfg.Subscriptions.EncryptionKey = base64.StdEncoding.EncodeToString(key)
	rdb := env.Redis(t)
	tableKeys := []string{cfg.Redis.KeyPrefix + "subscriptions", cfg.Redis.KeyPrefix + "subscriptions:version", cfg.Redis.KeyPrefix + "subscriptions:epoch"}
	t.Cleanup(func() { rdb.Del(context.Background(), tableKeys...) })
	benv := testenv.BinaryEnv(t, cfg)
	run := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"subscriptions"}, args...)...)
		cmd.Env, cmd.Stdin = benv, strings.NewReader(stdin)
		out, err := cmd.Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				err = fmt.Errorf("%w: %s", err, ee.Stderr)
			}
			t.Fatalf("webhookd subscriptions %s: %v", strings.Join(args, " "), err)
		}
		return string(out)
	}

	rc := testenv.NewReceiver(t)
	signed, apiKey := subscriptions.NewSigningSecret(), "sk_live_"+testenv.ID()
	run("", "add", "--id", "signed", "--tenant", "acme", "--url", rc.URL+"/signed", "--events", "PRIZE_PAYOUT_SUCCEEDED",
		"--signing-secret", signed, "--api-key", apiKey)
	before := subscriptions.NewSigningSecret()
	run("", "add", "--id", "rotating", "--tenant", "acme", "--url", rc.URL+"/rotating", "--events", "PRIZE_PAYOUT_SUCCEEDED",
		"--signing-secret", before)
	after := strings.TrimSpace(run("", "rotate-secret", "rotating", "--grace", "1h"))

	backup := run("", "list", "-o", "yaml", "--reveal-secrets")
	for _, s := range []string{signed, before, after, apiKey} {
		if !strings.Contains(backup, s) {
			t.Fatalf("the backup lacks a secret:\n%s", backup)
		}
	}
	if out := run(backup, "apply", "-f", "-"); out != "added 0, updated 0, deleted 0, unchanged 2\n" {
		t.Fatalf("re-applying the backup to the live table: %q", out)
	}

	// The table is lost (Redis restarted without its data), then restored.
	if err := rdb.Del(context.Background(), tableKeys...).Err(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "backup.yaml")
	if err := os.WriteFile(path, []byte(backup), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := run("", "apply", "-f", path); out != "added 2, updated 0, deleted 0, unchanged 0\n" {
		t.Fatalf("restore: %q", out)
	}
	if raw := rdb.HGet(context.Background(), tableKeys[0], "signed").Val(); strings.Contains(raw, strings.TrimPrefix(signed, "whsec_")) {
		t.Fatalf("restored secret stored in clear: %s", raw)
	}

	p := testenv.StartBinary(t, bin, benv)
	p.WaitReady(t, 60*time.Second)
	testenv.Produce(t, cfg.Kafka.Brokers, kafka.Message{Topic: cfg.Kafka.Topics[0], Key: []byte("k"), Value: []byte(
		`{"tenant_id":"acme","event_type":"PRIZE_PAYOUT_SUCCEEDED","campaign_id":"c","request_id":"r1",` +
			`"player_id":"p1","player_currency":"EUR","status":"SUCCESS","prize_type":"cash","amount":10.00,"bonus_id":1}`)})
	testenv.Eventually(t, 30*time.Second, "a delivery to each subscription", func() bool { return rc.Count() >= 2 })

	got := map[string]testenv.Request{}
	for _, r := range rc.Requests() {
		got[r.Path] = r
	}
	for path, secrets := range map[string][]string{"/signed": {signed}, "/rotating": {after, before}} {
		r, ok := got[path]
		if !ok {
			t.Fatalf("no delivery to %s", path)
		}
		for _, s := range secrets {
			if err := verifySignature(s, r.Header, r.Body); err != nil {
				t.Errorf("%s: the delivery does not verify with a secret the partner holds: %v (webhook-signature %q)", path, err, r.Header.Get("webhook-signature"))
			}
		}
	}
	if auth := got["/signed"].Header.Get("Authorization"); auth != "Bearer "+apiKey {
		t.Errorf("Authorization %q: the restored API key was not sent", auth)
	}
	if strings.Contains(p.Output(), signed) || strings.Contains(p.Output(), apiKey) {
		t.Error("the worker logged a secret")
	}
}

// verifySignature is what a partner does: recompute the HMAC with its
// secret and accept any matching v1 signature of webhook-signature.
func verifySignature(secret string, h http.Header, body []byte) error {
	key, err := subscriptions.DecodeSigningSecret(secret)
	if err != nil {
		return err
	}
	return delivery.VerifySignature(key, h, body, time.Now())
}
