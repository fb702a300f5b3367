package delivery

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/unibo/webhookd/config"
)

func TestPolicyRetryableDefaults(t *testing.T) {
	p := NewPolicy(config.Defaults().Delivery)
	cases := []struct {
		name string
		res  Result
		want bool
	}{
		{"success", Result{Status: 200}, false},
		{"transport", Result{Err: errors.New("transport: connection refused")}, true},
		{"timeout", Result{Err: ErrTimeout}, true},
		{"circuit open", Result{Err: ErrCircuitOpen}, true},
		{"408", Result{Status: 408, Err: &StatusError{408}}, true},
		{"429", Result{Status: 429, Err: &StatusError{429}}, true},
		{"500", Result{Status: 500, Err: &StatusError{500}}, true},
		{"503", Result{Status: 503, Err: &StatusError{503}}, true},
		{"400", Result{Status: 400, Err: &StatusError{400}}, false},
		{"401", Result{Status: 401, Err: &StatusError{401}}, false},
		{"410", Result{Status: 410, Err: &StatusError{410}}, false},
		{"302", Result{Status: 302, Err: &StatusError{302}}, false},
	}
	for _, tc := range cases {
		if got := p.Retryable(tc.res); got != tc.want {
			t.Errorf("%s: retryable %v, want %v", tc.name, got, tc.want)
		}
	}
	if p.MaxAttempts(0) != 1 || p.MaxAttempts(4) != 4 {
		t.Fatalf("max attempts: deployment %d, subscription override %d", p.MaxAttempts(0), p.MaxAttempts(4))
	}
}

func TestPolicyCustomRetryOn(t *testing.T) {
	cfg := config.Defaults().Delivery
	cfg.Retry.On = []string{"circuit", "4xx", "502"}
	p := NewPolicy(cfg)
	for status, want := range map[int]bool{400: true, 404: true, 502: true, 500: false, 503: false} {
		if got := p.Retryable(Result{Status: status, Err: &StatusError{status}}); got != want {
			t.Errorf("%d: %v want %v", status, got, want)
		}
	}
	if !p.Retryable(Result{Err: ErrCircuitOpen}) || p.Retryable(Result{Err: ErrTimeout}) {
		t.Error("circuit/timeout classes not honoured")
	}
}

func TestBackoffFullJitterCappedAndRetryAfter(t *testing.T) {
	cfg := config.Defaults().Delivery
	cfg.Retry.MinBackoff, cfg.Retry.MaxBackoff, cfg.Retry.RetryAfterMax = time.Second, 8*time.Second, time.Minute
	cfg.Breaker.Cooldown = 10 * time.Second
	p := NewPolicy(cfg)
	for next := 2; next <= 10; next++ {
		ceiling := min(time.Second<<(next-2), 8*time.Second)
		var maxSeen time.Duration
		for i := 0; i < 2000; i++ {
			d := p.Backoff(next, Result{Status: 500})
			if d < 0 || d > ceiling {
				t.Fatalf("attempt %d: backoff %s outside [0, %s]", next, d, ceiling)
			}
			maxSeen = max(maxSeen, d)
		}
		if maxSeen < ceiling/2 {
			t.Fatalf("attempt %d: jitter never came near the ceiling %s (max %s)", next, ceiling, maxSeen)
		}
	}
	// Retry-After lengthens a backoff on 429/503, capped; it never shortens one.
	if d := p.Backoff(2, Result{Status: 429, RetryAfter: 30 * time.Second}); d != 30*time.Second {
		t.Fatalf("429 Retry-After 30s: backoff %s", d)
	}
	if d := p.Backoff(2, Result{Status: 503, RetryAfter: time.Hour}); d != time.Minute {
		t.Fatalf("503 Retry-After 1h: backoff %s, want the 1m cap", d)
	}
	if d := p.Backoff(2, Result{Status: 500, RetryAfter: time.Hour}); d > time.Second {
		t.Fatalf("Retry-After honoured on a 500: %s", d)
	}
	if d := p.Backoff(2, Result{Err: ErrCircuitOpen}); d < 10*time.Second {
		t.Fatalf("circuit-open retry due before the cool-down ends: %s", d)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	cases := map[string]time.Duration{
		"":                              0,
		"120":                           2 * time.Minute,
		"-5":                            0,
		"soon":                          0,
		"Thu, 26 Nov 2026 12:01:30 GMT": 90 * time.Second,
		"Thu, 26 Nov 2026 11:00:00 GMT": 0,
	}
	for in, want := range cases {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("%q: %s want %s", in, got, want)
		}
	}
}

func TestSendReportsRetryAfterAndWebhookID(t *testing.T) {
	var gotID string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotID = r.Header.Get("webhook-id")
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	s := testSender(time.Second)
	res := s.Send(context.Background(), Endpoint{URL: srv.URL, WebhookID: "msg_abc"}, []byte(`{}`))
	if res.Status != 429 || res.RetryAfter != 7*time.Second {
		t.Fatalf("result %+v", res)
	}
	if gotID != "msg_abc" {
		t.Fatalf("webhook-id %q", gotID)
	}
}
