package ops

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestReadyzReportsEveryCheck(t *testing.T) {
	checks := []Check{{Name: "kafka", OK: true}, {Name: "redis", OK: false, Detail: "unreachable"}}
	h := Handler(func() []Check { return checks }, nil, false)

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d with a failing check", rec.Code)
	}
	var body struct {
		Ready  bool    `json:"ready"`
		Checks []Check `json:"checks"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Ready || len(body.Checks) != 2 || body.Checks[1].Detail != "unreachable" {
		t.Fatalf("body %s (%v)", rec.Body, err)
	}

	checks[1].OK = true
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d with every check passing", rec.Code)
	}

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/healthz %d", rec.Code)
	}
}

func TestPprofOnlyWhenEnabled(t *testing.T) {
	for _, enabled := range []bool{false, true} {
		rec := httptest.NewRecorder()
		Handler(func() []Check { return nil }, nil, enabled).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/debug/pprof/", nil))
		if (rec.Code == http.StatusOK) != enabled {
			t.Errorf("pprof enabled=%v: status %d", enabled, rec.Code)
		}
	}
}
