package delivery

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/unibo/webhookd/subscriptions"
)

// The verification snippets the README gives partners (docs/verify) are run
// on what the Sender really sends: they must accept it, during a rotation
// with either secret, and reject a tampered body, an old timestamp and the
// wrong secret. The spec's test vector checks them independently of us.
func TestPartnerVerificationSnippets(t *testing.T) {
	snippets := map[string][]string{
		"node":    {"node", filepath.Join("..", "docs", "verify", "verify_webhook.js")},
		"python3": {"python3", filepath.Join("..", "docs", "verify", "verify_webhook.py")},
	}
	var c capture
	srv := httptest.NewServer(&c)
	defer srv.Close()
	s := testSender(time.Second)
	defer s.Close()
	old, next := subscriptions.NewSigningSecret(), subscriptions.NewSigningSecret()
	sub := &subscriptions.Subscription{ID: "sub_1", URL: srv.URL, SigningSecret: old}
	sub.RotateSigningSecret(next, time.Now(), time.Hour)
	body := []byte(`{"tenant_id":"acme","event_type":"PRIZE_PAYOUT_SUCCEEDED","amount":100.0,"note":"caf\u00e9 \u2713"}`)
	if res := s.Send(context.Background(), EndpointOf(sub, "msg_snippet", time.Now()), body); !res.OK() {
		t.Fatal(res.Err)
	}
	h, got := c.last()
	headers := map[string]string{
		"webhook-id":        h.Get("webhook-id"),
		"webhook-timestamp": h.Get("webhook-timestamp"),
		"webhook-signature": h.Get("webhook-signature"),
	}
	sent, _ := strconv.ParseInt(headers["webhook-timestamp"], 10, 64)
	tampered := bytes.Replace(got, []byte("100.0"), []byte("900.0"), 1)

	cases := []struct {
		name    string
		secret  string
		headers map[string]string
		body    []byte
		now     int64
		want    string
	}{
		{"spec test vector", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", map[string]string{
			"webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek", "webhook-timestamp": "1614265330",
			"webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}, []byte(`{"test": 2432232314}`), 1614265330, "valid"},
		{"delivery, new secret", next, headers, got, sent, "valid"},
		{"delivery, previous secret in its grace period", old, headers, got, sent, "valid"},
		{"tampered body", next, headers, tampered, sent, "invalid"},
		{"replayed 10 minutes later", next, headers, got, sent + 600, "invalid"},
		{"another secret", subscriptions.NewSigningSecret(), headers, got, sent, "invalid"},
	}
	for lang, argv := range snippets {
		if _, err := exec.LookPath(argv[0]); err != nil {
			t.Logf("SKIPPING the %s snippet: %s is not installed", lang, argv[0])
			continue
		}
		for _, tc := range cases {
			in, _ := json.Marshal(map[string]any{"secret": tc.secret, "headers": tc.headers,
				"body_b64": base64.StdEncoding.EncodeToString(tc.body), "now": tc.now})
			cmd := exec.Command(argv[0], argv[1:]...)
			cmd.Stdin = bytes.NewReader(in)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s", lang, err, out)
			}
			if strings.TrimSpace(string(out)) != tc.want {
				t.Errorf("%s snippet, %s: %s, want %s", lang, tc.name, strings.TrimSpace(string(out)), tc.want)
			}
		}
	}
}

// The README shows partners the same verification functions the test above
// runs: they cannot drift apart.
func TestREADMEShowsTheTestedSnippets(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for file, bounds := range map[string][2]string{
		"verify_webhook.js": {"const crypto", "module.exports"},
		"verify_webhook.py": {"import base64", "if __name__"},
	} {
		src, err := os.ReadFile(filepath.Join("..", "docs", "verify", file))
		if err != nil {
			t.Fatal(err)
		}
		s := string(src)
		start, end := strings.Index(s, bounds[0]), strings.Index(s, bounds[1])
		if start < 0 || end < start {
			t.Fatalf("%s: cannot find the function between %q and %q", file, bounds[0], bounds[1])
		}
		if fn := strings.TrimSpace(s[start:end]); !strings.Contains(string(readme), fn) {
			t.Errorf("README.md does not show docs/verify/%s's verification code as it is", file)
		}
	}
}
