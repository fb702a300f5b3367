package integration

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/unibo/webhookd/internal/testenv"
	"github.com/unibo/webhookd/subscriptions"
)

const adminToken = "integration-admin-token-0123456789abcdef"

func adminRequest(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// With the default configuration the worker serves no admin API, not even
// on the ops port.
func TestAdminAPIIsOffByDefault(t *testing.T) {
	s := newSuite(t)
	if s.cfg.Admin.Addr != "" {
		t.Fatalf("the default config sets admin.addr %q", s.cfg.Admin.Addr)
	}
	w := s.start()
	if addr := w.AdminAddr(); addr != "" {
		t.Fatalf("a worker with the default config serves the admin API on %s", addr)
	}
	for _, token := range []string{"", adminToken} {
		if status, _ := adminRequest(t, http.MethodGet, "http://"+w.OpsAddr()+"/v1/subscriptions", token, ""); status != http.StatusNotFound {
			t.Fatalf("the ops port answers /v1/subscriptions with %d, want 404", status)
		}
	}
}

// With admin.addr set, the worker serves the API beside the ops port: a
// subscription created through it is used for deliveries within seconds,
// and the port is closed when the worker stops.
func TestWorkerServesTheAdminAPIWhenConfigured(t *testing.T) {
	s := newSuite(t)
	s.cfg.Admin.Addr = "127.0.0.1:0"
	s.cfg.Admin.Token = adminToken
	s.secrets = append(s.secrets, adminToken, "sk_admin_created_0123456789")
	w := s.start()
	base := "http://" + w.AdminAddr()
	if w.AdminAddr() == "" {
		t.Fatal("admin.addr is set but the worker serves no admin API")
	}

	if status, _ := adminRequest(t, http.MethodGet, base+"/v1/subscriptions", "", ""); status != http.StatusUnauthorized {
		t.Fatalf("no token: %d", status)
	}
	rc := testenv.NewReceiver(t)
	status, body := adminRequest(t, http.MethodPost, base+"/v1/subscriptions", adminToken,
		`{"tenant_id":"acme","url":"`+rc.URL+`","event_types":["PRIZE_PAYOUT_SUCCEEDED"],"api_key":"sk_admin_created_0123456789"}`)
	if status != http.StatusCreated || strings.Contains(body, "sk_admin_created_0123456789") {
		t.Fatalf("create: %d %s", status, body)
	}
	var created subscriptions.Subscription
	if err := json.Unmarshal([]byte(body), &created); err != nil {
		t.Fatal(err)
	}
	// The worker picks the new subscription up and delivers to it.
	testenv.Eventually(t, 10*time.Second, "the worker to deliver to the subscription created through the API", func() bool {
		s.publish("p1", payout("acme", "c1", "r-admin", "p1"))
		deadline := time.Now().Add(500 * time.Millisecond)
		for rc.Count() == 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		return rc.Count() > 0
	})
	if got := rc.Requests()[0].Header.Get("Authorization"); got != "Bearer sk_admin_created_0123456789" {
		t.Fatalf("delivered with Authorization %q", got)
	}
	if status, body := adminRequest(t, http.MethodGet, base+"/v1/subscriptions/"+created.ID, adminToken, ""); status != http.StatusOK ||
		!strings.Contains(body, `"api_key":"****6789"`) {
		t.Fatalf("get: %d %s", status, body)
	}

	addr := w.AdminAddr()
	w.Stop(t)
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		_ = c.Close()
		t.Fatalf("the admin port %s still accepts connections after the worker stopped", addr)
	}
}
