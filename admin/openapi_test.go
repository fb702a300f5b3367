package admin_test

import (
	"context"
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
	// A method the table does not have is the mux's 405, not a handler.
	if rec := f.request(http.MethodPut, "/v1/subscriptions/x", "{}", "Bearer "+testToken); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("PUT /v1/subscriptions/x: %d, want 405", rec.Code)
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
