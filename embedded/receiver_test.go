package embedded_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/unibo/webhookd/delivery"
	"github.com/unibo/webhookd/egress"
	"github.com/unibo/webhookd/embedded"
	"github.com/unibo/webhookd/internal/testenv"
	"github.com/unibo/webhookd/subscriptions"
)

// The receiver answers as the guide asks a partner's endpoint to: the API
// key and the signature first, then the payload; and prints every body
// exactly as it came.
func TestReceiverAnswersAsTheGuideRecommends(t *testing.T) {
	secret := subscriptions.NewSigningSecret()
	key, err := subscriptions.DecodeSigningSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	var out testenv.LockedBuffer
	r, err := embedded.ListenReceiver("127.0.0.1:0", &out, embedded.ReceiverOptions{
		APIKey: "k-123",
		Verify: func(h http.Header, body []byte) error { return delivery.VerifySignature(key, h, body, time.Now()) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Close() }()

	valid := []byte(`{"campaign_id":"c","event_type":"PRIZE_PAYOUT_SUCCEEDED","amount":100.0}`)
	cases := []struct {
		name   string
		apiKey string
		secret string
		body   []byte
		want   int
	}{
		{"valid delivery", "k-123", secret, valid, 200},
		{"no API key", "", secret, valid, 401},
		{"wrong API key", "k-999", secret, valid, 401},
		{"unsigned", "k-123", "", valid, 401},
		{"signed with another secret", "k-123", subscriptions.NewSigningSecret(), valid, 401},
		{"invalid JSON", "k-123", secret, valid[:20], 400},
		{"no event_type", "k-123", secret, []byte(`{"campaign_id":"c","amount":100.0}`), 400},
		{"empty event_type", "k-123", secret, []byte(`{"event_type":""}`), 400},
		{"not an object", "k-123", secret, []byte(`[1,2]`), 400},
	}
	// Each request is sent by delivery.Probe: webhookd's own headers and
	// signing, as send-test sends them.
	for _, tc := range cases {
		ep := delivery.Endpoint{URL: r.URL(), APIKey: tc.apiKey, WebhookID: "msg_receiver_test"}
		if tc.secret != "" {
			k, _ := subscriptions.DecodeSigningSecret(tc.secret)
			ep.SigningKeys = [][]byte{k}
		}
		res := delivery.Probe(t.Context(), loopbackOK(t), ep, tc.body, 5*time.Second)
		if res.Err != nil || res.Status != tc.want {
			t.Errorf("%s: got %d (%v) %s, want %d", tc.name, res.Status, res.Err, res.Excerpt, tc.want)
		}
	}
	printed := out.String()
	if n := strings.Count(printed, "── webhook #"); n != len(cases) {
		t.Fatalf("printed %d webhooks, want %d:\n%s", n, len(cases), printed)
	}
	// Raw bytes, not re-indented: 100.0 stays 100.0 and the truncated body is
	// shown as it came, each followed by a newline.
	for _, want := range []string{"\n" + string(valid) + "\n", "\n" + string(valid[:20]) + "\n",
		"→ 200\n", `→ 401 {"error":"Unauthorized"}`, `→ 400 {"error":"Invalid JSON"}`, "Invalid signature",
		"  Authorization: Bearer k-123\n", "  Webhook-Id: msg_receiver_test\n"} {
		if !strings.Contains(printed, want) {
			t.Errorf("output lacks %q:\n%s", want, printed)
		}
	}
}

// Without options it accepts any JSON delivery with an event_type: what
// `make run` prints to.
func TestReceiverWithoutOptionsAcceptsDeliveries(t *testing.T) {
	var out testenv.LockedBuffer
	r, err := embedded.StartReceiver(&out)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Close() }()
	resp, err := http.Post(r.URL(), "application/json", strings.NewReader(`{"event_type":"PLAYER_OPTED_IN"}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != `{"received":true}` {
		t.Fatalf("got %d %s", resp.StatusCode, b)
	}
	if !strings.Contains(out.String(), "\n{\"event_type\":\"PLAYER_OPTED_IN\"}\n") {
		t.Fatalf("output:\n%s", out.String())
	}
}

func loopbackOK(t *testing.T) egress.Policy {
	t.Helper()
	p, err := egress.New([]string{"127.0.0.0/8"}, false)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
