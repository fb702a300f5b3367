package admin_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/unibo/webhookd/admin"
	"github.com/unibo/webhookd/delivery"
)

// openAPIDoc is the part of the OpenAPI document the test checks.
type openAPIDoc struct {
	OpenAPI    string                    `yaml:"openapi"`
	Paths      map[string]map[string]any `yaml:"paths"`
	Security   []map[string][]string     `yaml:"security"`
	Components struct {
		SecuritySchemes map[string]struct {
			Type   string `yaml:"type"`
			Scheme string `yaml:"scheme"`
		} `yaml:"securitySchemes"`
	} `yaml:"components"`
}

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// The document lists exactly the routes the handler serves, and says they
// need a bearer token.
func TestOpenAPIDocumentMatchesTheRoutes(t *testing.T) {
	var doc openAPIDoc
	if err := yaml.Unmarshal(admin.OpenAPI, &doc); err != nil {
		t.Fatalf("admin/openapi.yaml: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi: %q, want 3.x", doc.OpenAPI)
	}
	documented := map[admin.Route]bool{}
	for path, item := range doc.Paths {
		for method := range item {
			if slices.Contains(httpMethods, method) {
				documented[admin.Route{Method: strings.ToUpper(method), Path: path}] = true
			}
		}
	}
	served := map[admin.Route]bool{}
	for _, rt := range admin.Routes() {
		served[rt] = true
		if !documented[rt] {
			t.Errorf("%s %s is served but not in admin/openapi.yaml", rt.Method, rt.Path)
		}
	}
	for rt := range documented {
		if !served[rt] {
			t.Errorf("%s %s is in admin/openapi.yaml but not served", rt.Method, rt.Path)
		}
	}

	var bearer []string
	for name, s := range doc.Components.SecuritySchemes {
		if s.Type == "http" && strings.EqualFold(s.Scheme, "bearer") {
			bearer = append(bearer, name)
		}
	}
	if len(bearer) != 1 || len(doc.Components.SecuritySchemes) != 1 {
		t.Fatalf("security schemes %+v, want exactly one http bearer scheme", doc.Components.SecuritySchemes)
	}
	if len(doc.Security) != 1 || doc.Security[0][bearer[0]] == nil {
		t.Fatalf("top-level security %v, want [%s]", doc.Security, bearer[0])
	}
	for path, item := range doc.Paths {
		for method, op := range item {
			if !slices.Contains(httpMethods, method) {
				continue
			}
			if sec, ok := op.(map[string]any)["security"]; ok {
				t.Errorf("%s %s overrides security (%v): every route needs the token", method, path, sec)
			}
		}
	}
}

// Every route of the table reaches its handler through the mux: the
// answer is the API's (JSON, or the YAML document), never the mux's own
// plain-text 404 or 405.
func TestEveryRouteIsServed(t *testing.T) {
	f := newFixture(t, noDeadLetters{})
	for _, rt := range admin.Routes() {
		path := strings.ReplaceAll(rt.Path, "{id}", "no-such-subscription")
		rec := f.request(rt.Method, path, "", "Bearer "+testToken)
		ct := rec.Header().Get("Content-Type")
		if rec.Code == http.StatusMethodNotAllowed || !(ct == "application/json" || ct == "application/yaml") {
			t.Errorf("%s %s: %d %q %s: not answered by the API", rt.Method, path, rec.Code, ct, rec.Body)
		}
	}
	rec := f.request(http.MethodGet, "/v1/openapi.yaml", "", "Bearer "+testToken)
	if rec.Code != http.StatusOK || rec.Body.String() != string(admin.OpenAPI) {
		t.Fatalf("GET /v1/openapi.yaml: %d", rec.Code)
	}
}

// A method a path does not have is 405 with the methods it has in Allow,
// and a path the API does not have is 404: JSON errors like every other.
func TestUnknownRoutesAnswerJSONErrors(t *testing.T) {
	f := newFixture(t, noDeadLetters{})
	for _, c := range []struct {
		method, path string
		status       int
		allow        []string
		reason       string
	}{
		{http.MethodPut, "/v1/subscriptions/x", http.StatusMethodNotAllowed, []string{"GET", "PATCH", "DELETE"}, "method PUT is not allowed"},
		{http.MethodGet, "/v1/send-test", http.StatusMethodNotAllowed, []string{"POST"}, "method GET is not allowed"},
		{http.MethodDelete, "/v1/subscriptions", http.StatusMethodNotAllowed, []string{"GET", "POST"}, "allowed: "},
		{http.MethodGet, "/v1/nothing-here", http.StatusNotFound, nil, "no such route: GET /v1/nothing-here"},
		{http.MethodPost, "/v1/subscriptions/x/explode", http.StatusNotFound, nil, "openapi.yaml"},
		{http.MethodGet, "/", http.StatusNotFound, nil, "no such route"},
	} {
		rec := f.request(c.method, c.path, "", "Bearer "+testToken)
		var body struct{ Error string }
		err := json.Unmarshal(rec.Body.Bytes(), &body)
		if rec.Code != c.status || rec.Header().Get("Content-Type") != "application/json" || err != nil || !strings.Contains(body.Error, c.reason) {
			t.Errorf("%s %s: %d %q %s; want %d, a JSON error containing %q", c.method, c.path, rec.Code, rec.Header().Get("Content-Type"), rec.Body, c.status, c.reason)
		}
		allow := rec.Header().Get("Allow")
		for _, m := range c.allow {
			if !strings.Contains(allow, m) {
				t.Errorf("%s %s: Allow %q, want %s in it", c.method, c.path, allow, m)
			}
		}
		if c.allow == nil && allow != "" {
			t.Errorf("%s %s: Allow %q on a 404", c.method, c.path, allow)
		}
	}
}

// noDeadLetters is an empty dead-letter topic.
type noDeadLetters struct{}

func (noDeadLetters) Read(context.Context, delivery.DeadLetterFilter, func(delivery.Record) error) (int, error) {
	return 0, nil
}

func (noDeadLetters) Replay(context.Context, delivery.DeadLetterFilter, func(delivery.Record, delivery.Result)) (delivery.ReplaySummary, error) {
	return delivery.ReplaySummary{}, nil
}
