package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/unibo/webhookd/config"
	"github.com/unibo/webhookd/internal/testenv"
)

func TestBinaryWorkerLackingTheTableKeySaysWhichKey(t *testing.T) {
	bin := binary(t)
	cfg := testenv.Start(t).Config(t)
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	sum := sha256.Sum256(raw)
	keyID := hex.EncodeToString(sum[:4])
	sealed := cfg
	sealed.Subscriptions.EncryptionKey = base64.StdEncoding.EncodeToString(raw)
	if _, errOut, code := runBinary(t, bin, testenv.BinaryEnv(t, sealed), "subscriptions", "add", "--tenant", "acme",
		"--url", "https://hooks.acme.example/p", "--events", "PLAYER_OPTED_IN", "--api-key", "k-123"); code != 0 {
		t.Fatalf("add: %s", errOut)
	}
	_, errOut, code := runBinary(t, bin, testenv.BinaryEnv(t, cfg), "subscriptions", "list")
	if code == 0 || !strings.Contains(errOut, "sealed with key "+keyID+" and subscriptions.encryption_key is not set") {
		t.Errorf("list without the key: exit %d, %q", code, errOut)
	}

	other := make([]byte, 32)
	_, _ = rand.Read(other)
	rotated := cfg
	rotated.Subscriptions.EncryptionKey = base64.StdEncoding.EncodeToString(other)
	for name, c := range map[string]config.Config{"no key": cfg, "another key": rotated} {
		p := testenv.StartBinary(t, bin, testenv.BinaryEnv(t, c))
		want := "the subscription table in Redis cannot be opened with the configured encryption keys " +
			"(subscriptions.encryption_key, subscriptions.previous_encryption_keys): key " + keyID + " is missing"
		testenv.Eventually(t, 30*time.Second, name+": the table's warning", func() bool { return strings.Contains(p.Output(), want) })
		if _, body := p.Readyz(); !strings.Contains(body, keyID) {
			t.Errorf("%s: /readyz does not name the key: %s", name, body)
		}
		if code, err := p.Terminate(30 * time.Second); err != nil || code != 0 {
			t.Errorf("%s: exit after SIGTERM: %d, %v", name, code, err)
		}
		logs := p.Output()
		for _, wrong := range []string{"Redis unavailable", "stored in clear"} {
			if strings.Contains(logs, wrong) {
				t.Errorf("%s: the worker logged %q:\n%s", name, wrong, testenv.Tail(logs, 20))
			}
		}
		if !strings.Contains(logs, `"missing_key_id":"`+keyID+`"`) {
			t.Errorf("%s: no missing_key_id field:\n%s", name, testenv.Tail(logs, 20))
		}
	}
}
