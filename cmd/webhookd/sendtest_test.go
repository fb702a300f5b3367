package main

import (
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
