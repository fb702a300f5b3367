package delivery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/unibo/webhookd/config"
)

func testSender(timeout time.Duration) *Sender {
	cfg := config.Defaults().Delivery
	cfg.Timeout = timeout
	cfg.AllowedCIDRs = []string{"127.0.0.0/8"} // httptest servers
	return NewSender(cfg, zap.NewNop(), nil)
}

func TestSendPostsBodyWithExactlyTheGuideHeaders(t *testing.T) {
	var gotHeaders []string
	var gotAuth, gotBody, gotMethod string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k := range r.Header {
			gotHeaders = append(gotHeaders, k)
		}
		sort.Strings(gotHeaders)
		gotAuth = r.Header.Get("Authorization")
		b, _ := io.ReadAll(r.Body)
		gotBody, gotMethod = string(b), r.Method
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	s := testSender(time.Second)
	defer s.Close()

	res := s.Send(context.Background(), Endpoint{URL: srv.URL, APIKey: "k-123"}, []byte(`{"a":1}`))
	if !res.OK() || res.Status != 202 {
		t.Fatalf("result %+v", res)
	}
	if gotMethod != http.MethodPost || gotBody != `{"a":1}` {
		t.Fatalf("%s %s", gotMethod, gotBody)
	}
	if strings.Join(gotHeaders, ",") != "Authorization,Content-Length,Content-Type,User-Agent" {
		t.Fatalf("headers %v", gotHeaders)
	}
	if gotAuth != "Bearer k-123" {
		t.Fatalf("Authorization %q", gotAuth)
	}

	gotHeaders = nil
	s.Send(context.Background(), Endpoint{URL: srv.URL}, []byte(`{}`))
	if strings.Join(gotHeaders, ",") != "Content-Length,Content-Type,User-Agent" {
		t.Fatalf("without API key, headers %v", gotHeaders)
	}
}

func TestSendOutcomes(t *testing.T) {
	var hits atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(200) })
	mux.HandleFunc("/created", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(201) })
	mux.HandleFunc("/fail", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) })
	mux.HandleFunc("/unauthorized", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(401) })
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/target", http.StatusFound) })
	mux.HandleFunc("/target", func(w http.ResponseWriter, _ *http.Request) { hits.Add(1); w.WriteHeader(200) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(strings.Repeat("x", 1<<20)))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	s := testSender(200 * time.Millisecond)
	defer s.Close()

	cases := []struct {
		path   string
		ok     bool
		status int
		errIs  error
	}{
		{"/ok", true, 200, nil},
		{"/created", true, 201, nil},
		{"/big", true, 200, nil},
		{"/fail", false, 500, nil},
		{"/unauthorized", false, 401, nil},
		{"/redirect", false, 302, nil},
		{"/slow", false, 0, ErrTimeout},
	}
	for _, tc := range cases {
		res := s.Send(context.Background(), Endpoint{URL: srv.URL + tc.path}, []byte(`{}`))
		if res.OK() != tc.ok || res.Status != tc.status {
			t.Errorf("%s: ok=%v status=%d err=%v", tc.path, res.OK(), res.Status, res.Err)
		}
		if tc.errIs != nil && !errors.Is(res.Err, tc.errIs) {
			t.Errorf("%s: err %v, want %v", tc.path, res.Err, tc.errIs)
		}
		var se *StatusError
		if !tc.ok && tc.status != 0 && (!errors.As(res.Err, &se) || se.Status != tc.status) {
			t.Errorf("%s: err %v is not a StatusError %d", tc.path, res.Err, tc.status)
		}
	}
	if hits.Load() != 0 {
		t.Fatal("redirect was followed")
	}

	refused := s.Send(context.Background(), Endpoint{URL: "http://127.0.0.1:1/hook"}, []byte(`{}`))
	if refused.OK() || refused.Status != 0 || refused.Err == nil {
		t.Fatalf("connection refused gave %+v", refused)
	}
}

func TestSendErrorsNeverCarryTheAPIKey(t *testing.T) {
	s := testSender(100 * time.Millisecond)
	res := s.Send(context.Background(), Endpoint{URL: "http://127.0.0.1:1/hook", APIKey: "secret-key-xyz"}, []byte(`{}`))
	if res.Err == nil || strings.Contains(res.Err.Error(), "secret-key-xyz") {
		t.Fatalf("err %v", res.Err)
	}
}

// A hostile partner cannot make webhookd buffer megabytes of headers.
func TestHugeResponseHeadersAreRefused(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		for i := range 200 {
			w.Header().Set(fmt.Sprintf("X-Junk-%d", i), strings.Repeat("j", 1000))
		}
	}))
	defer srv.Close()
	s := testSender(time.Second)
	defer s.Close()
	res := s.Send(context.Background(), Endpoint{URL: srv.URL}, []byte(`{}`))
	if res.OK() || res.Status != 0 || !strings.Contains(fmt.Sprint(res.Err), "header") {
		t.Fatalf("200 KB of headers gave %+v", res)
	}
}

// A 429 with Retry-After pauses its endpoint: nothing more is sent to it
// until then (the deliveries come back as PausedError, for the settler to
// defer), and however many 429s arrive the circuit stays closed: the
// partner is up, it asks for less.
func TestRetryAfterPausesTheEndpointWithoutOpeningItsCircuit(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Retry-After", "60")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	s := testSender(time.Second)
	defer s.Close()
	ep := Endpoint{URL: srv.URL + "/hook", WebhookID: "msg_1"}
	res := s.Send(context.Background(), ep, []byte(`{}`))
	if res.Status != 429 || res.RetryAfter != time.Minute || !res.Backpressure() {
		t.Fatalf("first send: %+v", res)
	}
	for range 10 {
		res = s.Send(context.Background(), ep, []byte(`{}`))
		var paused *PausedError
		if !errors.As(res.Err, &paused) || time.Until(paused.Until) < 50*time.Second {
			t.Fatalf("send during the pause: %+v, want PausedError until about a minute from now", res)
		}
	}
	if hits.Load() != 1 {
		t.Errorf("the partner got %d requests during its pause, want only the first", hits.Load())
	}
	if st := s.endpoints.get(ep.URL).State(); st != closed {
		t.Errorf("circuit %s after 429s, want closed", st)
	}
}

// 429s without Retry-After pause the endpoint for a second each and never
// count towards its circuit; 503 without Retry-After is an outage and does.
func TestOnly503WithoutRetryAfterCountsTowardsTheCircuit(t *testing.T) {
	cfg := config.Defaults().Delivery
	cfg.AllowedCIDRs = []string{"127.0.0.0/8"}
	for _, tc := range []struct {
		status   int
		wantOpen bool
	}{{429, false}, {503, true}} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(tc.status) }))
		s := NewSender(cfg, zap.NewNop(), nil)
		e := s.endpoints.get(srv.URL)
		for range cfg.Breaker.Failures + 1 {
			e.mu.Lock()
			e.pausedUntil = time.Time{} // skip the second's pause: the circuit is what is tested
			e.mu.Unlock()
			s.Send(context.Background(), Endpoint{URL: srv.URL}, []byte(`{}`))
		}
		if open := e.State() != closed; open != tc.wantOpen {
			t.Errorf("%d ×%d: circuit open %v, want %v", tc.status, cfg.Breaker.Failures+1, open, tc.wantOpen)
		}
		s.Close()
		srv.Close()
	}
}
