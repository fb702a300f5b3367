package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/unibo/webhookd/delivery"
)

// guidePartner answers as the guide recommends: 401 without the right key,
// 400 for invalid JSON or a payload without event_type, 200 otherwise.
func guidePartner(t *testing.T, key string, hits *atomic.Int64) *httptest.Server {
	t.Setenv("WEBHOOKD_DELIVERY_ALLOWED_CIDRS", "127.0.0.0/8") // the egress guard blocks loopback
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.Header.Get("Authorization") != "Bearer "+key {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		body, _ := io.ReadAll(r.Body)
		var m map[string]any
		if json.Unmarshal(body, &m) != nil || m["event_type"] == nil {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"Invalid payload"}`))
			return
		}
		_, _ = w.Write([]byte(`{"received":true}`))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestSendTestAllExamplesAndScenarios(t *testing.T) {
	var hits atomic.Int64
	srv := guidePartner(t, "k-123", &hits)
	out, err := runRoot(t, "send-test", "--url", srv.URL, "--api-key", "k-123", "--all")
	if err != nil {
		t.Fatalf("--all: %v\n%s", err, out)
	}
	if hits.Load() != 9 || strings.Count(out, " ok ") != 9 || !strings.Contains(out, `{"received":true}`) {
		t.Fatalf("--all sent %d requests:\n%s", hits.Load(), out)
	}
	for _, s := range delivery.ProbeScenarios() {
		if out, err := runRoot(t, "send-test", "--url", srv.URL, "--api-key", "k-123", "--scenario", s); err != nil {
			t.Errorf("scenario %s against a guide-abiding partner: %v\n%s", s, err, out)
		}
	}
	out, err = runRoot(t, "send-test", "--url", srv.URL, "--api-key", "k-123", "--event", "PRIZE_PAYOUT_CREATED", "--prize-type", "free_spins")
	if err != nil || !strings.Contains(out, "free spins created") {
		t.Fatalf("one example: %v\n%s", err, out)
	}
}

func TestSendTestReportsAPartnerThatAcceptsEverything(t *testing.T) {
	t.Setenv("WEBHOOKD_DELIVERY_ALLOWED_CIDRS", "127.0.0.0/8")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	out, err := runRoot(t, "send-test", "--url", srv.URL, "--scenario", "invalid-json")
	if err == nil || !strings.Contains(out, "UNEXPECTED") {
		t.Fatalf("a partner answering 200 to invalid JSON passed: %v\n%s", err, out)
	}
	if _, err := runRoot(t, "send-test", "--url", "ftp://x", "--all"); err == nil {
		t.Fatal("a non-http URL was accepted")
	}
}

// send-test obeys the egress guard like deliveries: without
// delivery.allowed_cidrs, a loopback endpoint is refused before any request.
func TestSendTestRefusesBlockedAddresses(t *testing.T) {
	var hits atomic.Int64
	srv := guidePartner(t, "k", &hits)
	t.Setenv("WEBHOOKD_DELIVERY_ALLOWED_CIDRS", "")
	out, err := runRoot(t, "send-test", "--url", srv.URL, "--api-key", "k", "--event", "PLAYER_OPTED_IN")
	if err == nil || !strings.Contains(err.Error(), "blocked by the egress policy: loopback") || hits.Load() != 0 {
		t.Fatalf("err %v, %d requests reached the server:\n%s", err, hits.Load(), out)
	}
}

// --signing-secret signs the probes as deliveries are signed, so a partner
// can test its verifier.
func TestSendTestSignsWithTheGivenSecret(t *testing.T) {
	t.Setenv("WEBHOOKD_DELIVERY_ALLOWED_CIDRS", "127.0.0.0/8")
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	var verified atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(r.Header.Get("webhook-id") + "." + r.Header.Get("webhook-timestamp") + "." + string(body)))
		if r.Header.Get("webhook-signature") == "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)) {
			verified.Add(1)
		}
	}))
	defer srv.Close()
	if out, err := runRoot(t, "send-test", "--url", srv.URL, "--signing-secret", secret, "--all"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if verified.Load() != 9 {
		t.Fatalf("%d of 9 probes carried a valid signature", verified.Load())
	}
	if _, err := runRoot(t, "send-test", "--url", srv.URL, "--signing-secret", "s3cret", "--all"); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("a malformed secret: %v", err)
	}
}
