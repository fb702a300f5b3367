package delivery

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/unibo/webhookd/config"
	"github.com/unibo/webhookd/egress"
	"github.com/unibo/webhookd/subscriptions"
)

// The Standard Webhooks specification's published test vector: a partner's
// off-the-shelf verifier accepts what webhookd sends only if this matches.
func TestSignatureMatchesTheStandardWebhooksTestVector(t *testing.T) {
	key, err := subscriptions.DecodeSigningSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	got := signature([][]byte{key}, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("signature %q, want %q", got, want)
	}
}

// verify is what a partner does (the README's snippets in Go): recompute
// the HMAC with its secret and accept any matching v1 signature.
func verify(secret string, h http.Header, body []byte, now time.Time) error {
	key, err := subscriptions.DecodeSigningSecret(secret)
	if err != nil {
		return err
	}
	ts, err := strconv.ParseInt(h.Get("webhook-timestamp"), 10, 64)
	if err != nil {
		return errors.New("no timestamp")
	}
	if d := now.Sub(time.Unix(ts, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return errors.New("timestamp outside tolerance")
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(h.Get("webhook-id") + "." + h.Get("webhook-timestamp") + "."))
	mac.Write(body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, sig := range strings.Fields(h.Get("webhook-signature")) {
		if hmac.Equal([]byte(sig), []byte(want)) {
			return nil
		}
	}
	return errors.New("no matching signature")
}

type capture struct {
	mu      sync.Mutex
	headers []http.Header
	bodies  [][]byte
}

func (c *capture) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	c.headers = append(c.headers, r.Header.Clone())
	c.bodies = append(c.bodies, b)
	c.mu.Unlock()
}

func (c *capture) last() (http.Header, []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.headers[len(c.headers)-1], c.bodies[len(c.bodies)-1]
}

func TestSignedDeliveryVerifiesAndRotationSendsBothSignatures(t *testing.T) {
	var c capture
	srv := httptest.NewServer(&c)
	defer srv.Close()
	s := testSender(time.Second)
	defer s.Close()

	old, next := subscriptions.NewSigningSecret(), subscriptions.NewSigningSecret()
	sub := &subscriptions.Subscription{ID: "sub_1", URL: srv.URL, APIKey: "k", SigningSecret: old}
	body := []byte(`{"event_type":"PLAYER_OPTED_IN","amount":100.0}`)
	now := time.Now()

	if res := s.Send(context.Background(), EndpointOf(sub, "msg_abc", now), body); !res.OK() {
		t.Fatal(res.Err)
	}
	h, got := c.last()
	var names []string
	for k := range h {
		names = append(names, k)
	}
	sort.Strings(names)
	if strings.Join(names, ",") != "Authorization,Content-Length,Content-Type,User-Agent,Webhook-Id,Webhook-Signature,Webhook-Timestamp" {
		t.Fatalf("headers %v", names)
	}
	if err := verify(old, h, got, time.Now()); err != nil {
		t.Fatalf("partner's verifier: %v", err)
	}
	if err := verify(next, h, got, time.Now()); err == nil {
		t.Fatal("a signature verified with a secret that was never configured")
	}
	tampered := append([]byte{}, got...)
	tampered[len(tampered)-2] = '1'
	if err := verify(old, h, tampered, time.Now()); err == nil {
		t.Fatal("a tampered body verified")
	}

	sub.RotateSigningSecret(next, now, time.Hour)
	s.Send(context.Background(), EndpointOf(sub, "msg_abc", now), body)
	h, got = c.last()
	if n := len(strings.Fields(h.Get("webhook-signature"))); n != 2 {
		t.Fatalf("during the grace period: %d signatures, want 2", n)
	}
	if verify(old, h, got, time.Now()) != nil || verify(next, h, got, time.Now()) != nil {
		t.Fatal("during the grace period both the old and the new secret must verify")
	}

	after := now.Add(time.Hour + time.Second)
	s.Send(context.Background(), EndpointOf(sub, "msg_abc", after), body)
	h, got = c.last()
	if verify(next, h, got, time.Now()) != nil || verify(old, h, got, time.Now()) == nil {
		t.Fatal("after the grace period only the new secret may verify")
	}

	sub.SigningSecret, sub.PreviousSigningSecret = "", ""
	s.Send(context.Background(), EndpointOf(sub, "msg_abc", now), body)
	if h, _ = c.last(); h.Get("webhook-signature") != "" || h.Get("webhook-timestamp") != "" {
		t.Fatal("an unsigned subscription got signature headers")
	}
}

// A delivery the egress policy refuses reaches no one, says why, is not
// retried, and does not count against the endpoint's health.
func TestBlockedDeliveriesReachNobody(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	cfg := config.Defaults().Delivery
	circuits := &circuitLog{}
	s := NewSender(cfg, zap.NewNop(), circuits)
	defer s.Close()

	// "localhost" passes no URL check here: the dialer sees 127.0.0.1 or ::1.
	url := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	for range 20 {
		res := s.Send(context.Background(), Endpoint{URL: url, APIKey: "k"}, []byte(`{}`))
		var be *BlockedError
		var eb *egress.BlockedError
		if !errors.As(res.Err, &be) || !errors.As(res.Err, &eb) || !strings.Contains(res.Err.Error(), "loopback") {
			t.Fatalf("got %v, want a blocked delivery naming the rule", res.Err)
		}
		if NewPolicy(cfg).Retryable(res) {
			t.Fatal("a blocked delivery is retryable")
		}
	}
	if hits.Load() != 0 {
		t.Fatalf("%d requests reached the loopback server", hits.Load())
	}
	if st := circuits.get(origin(url)); st != "" {
		t.Fatalf("blocked deliveries changed the circuit: %s", st)
	}

	cfg.AllowedCIDRs = []string{"127.0.0.0/8", "::1/128"}
	cfg.RequireHTTPS = true
	s2 := NewSender(cfg, zap.NewNop(), nil)
	defer s2.Close()
	res := s2.Send(context.Background(), Endpoint{URL: srv.URL}, []byte(`{}`))
	if !errors.Is(res.Err, egress.ErrHTTPSRequired) || hits.Load() != 0 {
		t.Fatalf("plain http with require_https: %v, %d hits", res.Err, hits.Load())
	}
}

// A subscription whose stored secret is unusable is not delivered unsigned:
// the attempt fails, reaching no one, is not retried, and leaves the
// endpoint's circuit alone.
func TestUnusableSecretFailsInsteadOfSendingUnsigned(t *testing.T) {
	var c capture
	srv := httptest.NewServer(&c)
	defer srv.Close()
	s := testSender(time.Second)
	defer s.Close()
	sub := &subscriptions.Subscription{ID: "sub_1", URL: srv.URL, SigningSecret: "whsec_edited-by-hand"}
	res := s.Send(context.Background(), EndpointOf(sub, "msg_1", time.Now()), []byte(`{}`))
	var se *SigningError
	if !errors.As(res.Err, &se) || !strings.Contains(res.Err.Error(), "signing_secret") {
		t.Fatalf("got %v, want a *SigningError naming the field", res.Err)
	}
	c.mu.Lock()
	n := len(c.headers)
	c.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d requests sent", n)
	}
	if NewPolicy(config.Defaults().Delivery).Retryable(res) || classify(context.Background(), res) != neutral {
		t.Fatal("an unusable secret must be neither retried nor held against the endpoint")
	}
}
