package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/unibo/webhookd/admin"
	"github.com/unibo/webhookd/config"
	"github.com/unibo/webhookd/delivery"
	"github.com/unibo/webhookd/event"
	"github.com/unibo/webhookd/internal/testenv"
	"github.com/unibo/webhookd/subscriptions"
)

const testToken = "admin-token-for-tests-0123456789abcdef"

// fixture is the API on the test Redis (and Kafka), with every response
// body and log line kept so that none may show a secret.
type fixture struct {
	t      *testing.T
	cfg    config.Config
	store  *subscriptions.Store
	h      *admin.Handler
	logs   *observer.ObservedLogs
	probes atomic.Int64
	bodies []string
	// secrets must never appear in a response or a log line.
	secrets []string
}

func newFixture(t *testing.T, dead admin.DeadLetters) *fixture {
	t.Helper()
	env := testenv.Start(t)
	f := &fixture{t: t, cfg: env.Config(t), secrets: []string{testToken}}
	rdb, err := subscriptions.NewRedisClient(f.cfg.Redis)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	opts, err := subscriptions.ConfigOptions(f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.store = subscriptions.NewStore(rdb, f.cfg.Redis.KeyPrefix, opts...)
	if dead == nil {
		dead = admin.KafkaDeadLetters{Config: f.cfg, Store: f.store}
	}
	core, logs := observer.New(zapcore.DebugLevel)
	f.logs = logs
	h, err := admin.NewHandler(admin.Deps{
		Store:       f.store,
		DeadLetters: dead,
		Probe: func(ctx context.Context, ep delivery.Endpoint, body []byte, timeout time.Duration) delivery.ProbeResult {
			f.probes.Add(1)
			return delivery.Probe(ctx, f.cfg.Delivery.Egress(), ep, body, timeout)
		},
		Token: testToken,
		Log:   zap.New(core),
	})
	if err != nil {
		t.Fatal(err)
	}
	f.h = h
	t.Cleanup(f.checkNoSecrets)
	return f
}

func (f *fixture) checkNoSecrets() {
	for _, e := range f.logs.All() {
		line := e.Message + fmt.Sprint(e.ContextMap())
		for _, s := range f.secrets {
			if strings.Contains(line, s) {
				f.t.Errorf("secret %q in a log line: %s", s, line)
			}
		}
	}
	for _, b := range f.bodies {
		for _, s := range f.secrets {
			if strings.Contains(b, s) {
				f.t.Errorf("secret %q in a response: %s", s, b)
			}
		}
	}
}

// request sends one request with the given Authorization header ("" for none).
func (f *fixture) request(method, path, body, auth string) *httptest.ResponseRecorder {
	f.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	f.bodies = append(f.bodies, rec.Body.String())
	return rec
}

// call sends an authorized request and decodes the JSON answer.
func (f *fixture) call(method, path, body string) (int, map[string]any) {
	f.t.Helper()
	rec := f.request(method, path, body, "Bearer "+testToken)
	var m map[string]any
	if rec.Body.Len() > 0 {
		if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
			f.t.Fatalf("%s %s: answer is not a JSON object (%v): %s", method, path, err, rec.Body)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			f.t.Errorf("%s %s: Content-Type %q", method, path, ct)
		}
	}
	return rec.Code, m
}

// mustCall is call that fails the test unless the status is want.
func (f *fixture) mustCall(want int, method, path, body string) map[string]any {
	f.t.Helper()
	status, m := f.call(method, path, body)
	if status != want {
		f.t.Fatalf("%s %s %s: status %d, want %d: %v", method, path, body, status, want, m)
	}
	return m
}

func (f *fixture) count() int {
	f.t.Helper()
	all, err := f.store.List(context.Background(), "")
	if err != nil {
		f.t.Fatal(err)
	}
	return len(all)
}

func TestNewHandlerRefusesAWeakToken(t *testing.T) {
	for _, token := range []string{"", "short"} {
		_, err := admin.NewHandler(admin.Deps{Token: token, Log: zap.NewNop()})
		if err == nil {
			t.Errorf("token %q accepted", token)
		}
	}
}

// Without the right token every route answers 401, says how to
// authenticate, and does nothing: no write, no request to a partner.
func TestEveryRouteRequiresTheToken(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	rc := testenv.NewReceiver(t)
	sub, err := f.store.Add(ctx, subscriptions.Subscription{ID: "keep-me", TenantID: "acme", URL: rc.URL, EventTypes: event.Types[:1], Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	bodies := map[string]string{
		"POST /v1/subscriptions":           `{"tenant_id":"acme","url":"https://a.example/","event_types":["PLAYER_OPTED_IN"]}`,
		"PATCH /v1/subscriptions/{id}":     `{"url":"https://evil.example/"}`,
		"POST /v1/send-test":               `{"url":"` + rc.URL + `"}`,
		"POST /v1/dead-letters/replay":     `{"subscription_id":"keep-me"}`,
		"POST /v1/subscriptions/{id}/test": "",
	}
	auths := []string{
		"",       // none
		"Bearer", // scheme only
		"Bearer wrong-token-0123456789abcdef0123456789", // wrong
		"Bearer " + testToken[:len(testToken)-1],        // a prefix
		"Bearer " + testToken + "x",                     // longer
		"Basic " + testToken,                            // wrong scheme
		testToken,                                       // no scheme
	}
	for _, rt := range admin.Routes() {
		path := strings.ReplaceAll(rt.Path, "{id}", sub.ID)
		for _, auth := range auths {
			rec := f.request(rt.Method, path, bodies[rt.Method+" "+rt.Path], auth)
			if rec.Code != http.StatusUnauthorized {
				t.Errorf("%s %s with Authorization %q: status %d, want 401", rt.Method, path, auth, rec.Code)
			}
			if h := rec.Header().Get("WWW-Authenticate"); !strings.HasPrefix(h, "Bearer") {
				t.Errorf("%s %s: WWW-Authenticate %q", rt.Method, path, h)
			}
			if strings.Contains(rec.Body.String(), "openapi") || !strings.Contains(rec.Body.String(), `"error"`) {
				t.Errorf("%s %s: 401 body %s", rt.Method, path, rec.Body)
			}
		}
	}
	// An unknown path is refused the same way: no route discovery.
	if rec := f.request(http.MethodGet, "/v1/nothing-here", "", ""); rec.Code != http.StatusUnauthorized {
		t.Errorf("unknown path without a token: %d", rec.Code)
	}
	got, err := f.store.Get(ctx, sub.ID)
	if err != nil || got.URL != rc.URL || !got.Enabled || f.count() != 1 {
		t.Fatalf("the table changed without a token: %+v, %v, %d subscriptions", got, err, f.count())
	}
	if f.probes.Load() != 0 || rc.Count() != 0 {
		t.Fatalf("%d probes and %d partner requests without a token", f.probes.Load(), rc.Count())
	}
	if n := f.logs.FilterMessageSnippet("refused").Len(); n == 0 {
		t.Error("refused requests are not logged")
	}
	// The scheme is case-insensitive (RFC 7235); the right token works.
	if rec := f.request(http.MethodGet, "/v1/subscriptions", "", "bearer "+testToken); rec.Code != http.StatusOK {
		t.Fatalf("the right token was refused: %d %s", rec.Code, rec.Body)
	}
}

const testAPIKey = "sk_live_partner_key_0123456789"

// Create, read, update, enable/disable and delete, with the API key masked
// in every answer and the stored subscription as the CLI would leave it.
func TestSubscriptionsRoundTrip(t *testing.T) {
	f := newFixture(t, nil)
	f.secrets = append(f.secrets, testAPIKey)
	ctx := context.Background()

	created := f.mustCall(http.StatusCreated, http.MethodPost, "/v1/subscriptions",
		`{"tenant_id":"acme","url":"https://hooks.acme.example/p","event_types":["PRIZE_PAYOUT_SUCCEEDED","PRIZE_PAYOUT_FAILED"],
		  "api_key":"`+testAPIKey+`","campaign_ids":["summer"]}`)
	id, _ := created["id"].(string)
	if !strings.HasPrefix(id, "sub_") || len(id) != 24 {
		t.Fatalf("created id %q, want a server-assigned sub_ id", id)
	}
	if created["api_key"] != config.Mask(testAPIKey) || created["enabled"] != true || created["created_at"] == "" {
		t.Fatalf("created %v", created)
	}
	stored, err := f.store.Get(ctx, id)
	if err != nil || stored.APIKey != testAPIKey || stored.TenantID != "acme" || !stored.Enabled ||
		len(stored.EventTypes) != 2 || len(stored.CampaignIDs) != 1 {
		t.Fatalf("stored %+v, %v", stored, err)
	}
	// Location names the new subscription.
	rec := f.request(http.MethodPost, "/v1/subscriptions",
		`{"id":"partner-b","tenant_id":"globex","url":"http://b.example:8080/h","event_types":["PLAYER_OPTED_IN"],"enabled":false}`, "Bearer "+testToken)
	if rec.Code != http.StatusCreated || rec.Header().Get("Location") != "/v1/subscriptions/partner-b" {
		t.Fatalf("create with an id: %d, Location %q", rec.Code, rec.Header().Get("Location"))
	}
	if b, _ := f.store.Get(ctx, "partner-b"); b.Enabled {
		t.Error(`"enabled": false stored an enabled subscription`)
	}
	// The same id again is a conflict naming the field.
	if status, m := f.call(http.MethodPost, "/v1/subscriptions",
		`{"id":"partner-b","tenant_id":"acme","url":"https://x.example/","event_types":["PLAYER_OPTED_IN"]}`); status != http.StatusConflict || m["field"] != "id" {
		t.Fatalf("taken id: %d %v", status, m)
	}

	got := f.mustCall(http.StatusOK, http.MethodGet, "/v1/subscriptions/"+id, "")
	if got["api_key"] != config.Mask(testAPIKey) || got["url"] != "https://hooks.acme.example/p" {
		t.Fatalf("get %v", got)
	}
	list := f.mustCall(http.StatusOK, http.MethodGet, "/v1/subscriptions", "")
	if subs := list["subscriptions"].([]any); len(subs) != 2 {
		t.Fatalf("list: %v", list)
	}
	list = f.mustCall(http.StatusOK, http.MethodGet, "/v1/subscriptions?tenant=globex", "")
	if subs := list["subscriptions"].([]any); len(subs) != 1 || subs[0].(map[string]any)["id"] != "partner-b" {
		t.Fatalf("list of tenant globex: %v", list)
	}
	list = f.mustCall(http.StatusOK, http.MethodGet, "/v1/subscriptions?tenant=nobody", "")
	if subs, ok := list["subscriptions"].([]any); !ok || len(subs) != 0 {
		t.Fatalf("list of an unknown tenant: %v, want an empty array", list)
	}

	// A partial update changes only the fields given: the key stays.
	updated := f.mustCall(http.StatusOK, http.MethodPatch, "/v1/subscriptions/"+id, `{"url":"https://hooks.acme.example/v2","max_attempts":3}`)
	if updated["url"] != "https://hooks.acme.example/v2" || updated["api_key"] != config.Mask(testAPIKey) {
		t.Fatalf("update %v", updated)
	}
	after, _ := f.store.Get(ctx, id)
	if after.APIKey != testAPIKey || after.MaxAttempts != 3 || len(after.CampaignIDs) != 1 || len(after.EventTypes) != 2 ||
		!after.CreatedAt.Equal(stored.CreatedAt) || after.UpdatedAt.Before(stored.UpdatedAt) {
		t.Fatalf("after a url-only update: %+v", after)
	}
	// "" removes the key, [] the campaign filter.
	f.mustCall(http.StatusOK, http.MethodPatch, "/v1/subscriptions/"+id, `{"api_key":"","campaign_ids":[]}`)
	if after, _ = f.store.Get(ctx, id); after.APIKey != "" || len(after.CampaignIDs) != 0 || after.URL != "https://hooks.acme.example/v2" {
		t.Fatalf("after clearing key and campaigns: %+v", after)
	}

	if m := f.mustCall(http.StatusOK, http.MethodPost, "/v1/subscriptions/"+id+"/disable", ""); m["enabled"] != false {
		t.Fatalf("disable answered %v", m)
	}
	if after, _ = f.store.Get(ctx, id); after.Enabled {
		t.Fatal("disable left the subscription enabled")
	}
	f.mustCall(http.StatusOK, http.MethodPost, "/v1/subscriptions/"+id+"/enable", "")
	if after, _ = f.store.Get(ctx, id); !after.Enabled {
		t.Fatal("enable left the subscription disabled")
	}

	if rec := f.request(http.MethodDelete, "/v1/subscriptions/"+id, "", "Bearer "+testToken); rec.Code != http.StatusNoContent {
		t.Fatalf("delete: %d %s", rec.Code, rec.Body)
	}
	if _, err := f.store.Get(ctx, id); err == nil {
		t.Fatal("still stored after delete")
	}
	for _, c := range []struct{ method, path, body string }{
		{http.MethodGet, "/v1/subscriptions/" + id, ""},
		{http.MethodDelete, "/v1/subscriptions/" + id, ""},
		{http.MethodPatch, "/v1/subscriptions/" + id, `{"url":"https://x.example/"}`},
		{http.MethodPost, "/v1/subscriptions/" + id + "/enable", ""},
		{http.MethodPost, "/v1/subscriptions/" + id + "/test", ""},
	} {
		if status, m := f.call(c.method, c.path, c.body); status != http.StatusNotFound || !strings.Contains(fmt.Sprint(m["error"]), "not found") {
			t.Errorf("%s %s of a deleted subscription: %d %v", c.method, c.path, status, m)
		}
	}
}

// Bad input answers 400 naming the field, with the CLI's reasons, and
// writes nothing.
func TestInvalidInputNamesTheFieldAndWritesNothing(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	existing, err := f.store.Add(ctx, subscriptions.Subscription{ID: "existing", TenantID: "acme", URL: "https://a.example/",
		EventTypes: event.Types[:1], APIKey: testAPIKey, CampaignIDs: []string{"summer"}, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	f.secrets = append(f.secrets, testAPIKey)
	good := `"tenant_id":"acme","url":"https://a.example/h","event_types":["PLAYER_OPTED_IN"]`
	cases := []struct {
		name, method, path, body string
		status                   int
		field, reason            string
	}{
		{"relative url", "POST", "/v1/subscriptions", `{"tenant_id":"acme","url":"a.example/hook","event_types":["PLAYER_OPTED_IN"]}`, 400, "url", "absolute http or https URL"},
		{"url with credentials", "POST", "/v1/subscriptions", `{"tenant_id":"acme","url":"https://u:p@a.example/","event_types":["PLAYER_OPTED_IN"]}`, 400, "url", "credentials"},
		{"unknown event type", "POST", "/v1/subscriptions", `{"tenant_id":"acme","url":"https://a.example/","event_types":["PRIZE_WON"]}`, 400, "event_types", "PRIZE_WON"},
		{"no event types", "POST", "/v1/subscriptions", `{"tenant_id":"acme","url":"https://a.example/","event_types":[]}`, 400, "event_types", "at least one"},
		{"empty tenant", "POST", "/v1/subscriptions", `{"tenant_id":"","url":"https://a.example/","event_types":["PLAYER_OPTED_IN"]}`, 400, "tenant_id", "empty"},
		{"bad id", "POST", "/v1/subscriptions", `{"id":"a b",` + good + `}`, 400, "id", "characters"},
		{"masked key copied back", "POST", "/v1/subscriptions", `{"api_key":"****6789",` + good + `}`, 400, "api_key", "masked"},
		{"unknown field", "POST", "/v1/subscriptions", `{"tenant":"acme",` + good + `}`, 400, "tenant", "unknown field"},
		{"wrong type", "POST", "/v1/subscriptions", `{"tenant_id":"acme","url":"https://a.example/","event_types":"PLAYER_OPTED_IN"}`, 400, "event_types", "expected"},
		{"server-set field", "POST", "/v1/subscriptions", `{"created_at":"2020-01-01T00:00:00Z",` + good + `}`, 400, "created_at", "set by the server"},
		{"not an object", "POST", "/v1/subscriptions", `["x"]`, 400, "", "JSON object"},
		{"empty body", "POST", "/v1/subscriptions", ``, 400, "", "JSON object"},
		{"invalid JSON", "POST", "/v1/subscriptions", `{"tenant_id":`, 400, "", "JSON"},
		{"trailing data", "POST", "/v1/subscriptions", `{` + good + `} {}`, 400, "", "after"},
		{"too large", "POST", "/v1/subscriptions", `{"tenant_id":"` + strings.Repeat("a", admin.MaxBodyBytes) + `"}`, 413, "", "larger than"},
		{"update: bad url", "PATCH", "/v1/subscriptions/existing", `{"url":"ftp://a.example/"}`, 400, "url", "absolute http or https URL"},
		{"update: unknown field", "PATCH", "/v1/subscriptions/existing", `{"urll":"https://b.example/"}`, 400, "urll", "unknown field"},
		{"update: id", "PATCH", "/v1/subscriptions/existing", `{"id":"other"}`, 400, "id", "cannot be changed"},
		{"update: null", "PATCH", "/v1/subscriptions/existing", `{"api_key":null}`, 400, "api_key", "null"},
		{"update: nothing", "PATCH", "/v1/subscriptions/existing", `{}`, 400, "", "nothing to update"},
		{"update: blank campaign", "PATCH", "/v1/subscriptions/existing", `{"campaign_ids":["a",""]}`, 400, "campaign_ids", "blank"},
		{"update: max attempts", "PATCH", "/v1/subscriptions/existing", `{"max_attempts":1000}`, 400, "max_attempts", "100"},
		{"cloud metadata url", "POST", "/v1/subscriptions", `{"tenant_id":"acme","url":"http://169.254.169.254/latest/meta-data/","event_types":["PLAYER_OPTED_IN"]}`, 400, "url", "metadata"},
		{"update: private url", "PATCH", "/v1/subscriptions/existing", `{"url":"https://10.0.0.5/"}`, 400, "url", "RFC 1918"},
		{"bad signing secret", "POST", "/v1/subscriptions", `{"signing_secret":"not-a-whsec-secret",` + good + `}`, 400, "signing_secret", "whsec_"},
		{"list: typo in the filter", "GET", "/v1/subscriptions?tenent=acme", ``, 400, "tenent", "unknown query parameter"},
		// An empty filter is not "no filter": it lists every tenant's.
		{"list: empty filter", "GET", "/v1/subscriptions?tenant=", ``, 400, "tenant", "empty"},
		// null leaves a Go field as it was: no body holds one.
		{"null", "POST", "/v1/subscriptions", `{"enabled":null,` + good + `}`, 400, "enabled", "null"},
		{"update: null in a list", "PATCH", "/v1/subscriptions/existing", `{"campaign_ids":[null]}`, 400, "campaign_ids", "null"},
		{"null body", "POST", "/v1/subscriptions/existing/test", `null`, 400, "", "JSON object"},
		{"rotation field", "POST", "/v1/subscriptions", `{"previous_signing_secret":"` + subscriptions.NewSigningSecret() + `",` + good + `}`, 400, "previous_signing_secret", "set by the server"},
		// "" is not a second way to leave a field out.
		{"rotate: empty secret", "POST", "/v1/subscriptions/existing/rotate-secret", `{"signing_secret":""}`, 400, "signing_secret", "not a value"},
		{"rotate: empty grace", "POST", "/v1/subscriptions/existing/rotate-secret", `{"grace":""}`, 400, "grace", "not a value"},
		{"test: empty scenario", "POST", "/v1/subscriptions/existing/test", `{"scenario":""}`, 400, "scenario", "not a value"},
		{"send-test: empty timeout", "POST", "/v1/send-test", `{"url":"https://a.example/","timeout":""}`, 400, "timeout", "not a value"},
		{"replay: empty since", "POST", "/v1/dead-letters/replay", `{"subscription_id":"existing","since":""}`, 400, "since", "not a value"},
		{"dead letters: empty filter", "GET", "/v1/dead-letters?subscription=", ``, 400, "subscription", "empty"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, m := f.call(c.method, c.path, c.body)
			if status != c.status || m["field"] != nilIfEmpty(c.field) || !strings.Contains(fmt.Sprint(m["error"]), c.reason) {
				t.Fatalf("status %d, body %v; want %d, field %q, error containing %q", status, m, c.status, c.field, c.reason)
			}
		})
	}
	if got, _ := f.store.Get(ctx, "existing"); got.URL != existing.URL || got.APIKey != testAPIKey || got.SigningSecret != "" ||
		len(got.CampaignIDs) != 1 || f.count() != 1 {
		t.Fatalf("rejected requests changed the table: %+v, %d subscriptions", got, f.count())
	}
	if n := f.probes.Load(); n != 0 {
		t.Fatalf("rejected requests sent %d probes", n)
	}
}

// A tenant at subscriptions.max_per_tenant is a conflict the caller can
// act on (409 naming tenant_id), not a server error.
func TestTenantLimitIsAConflict(t *testing.T) {
	f := newFixture(t, noDeadLetters{})
	ctx := context.Background()
	for i := range f.cfg.Subscriptions.MaxPerTenant {
		if _, err := f.store.Add(ctx, subscriptions.Subscription{TenantID: "acme", URL: fmt.Sprintf("https://a.example/%d", i), EventTypes: event.Types[:1]}); err != nil {
			t.Fatal(err)
		}
	}
	status, m := f.call(http.MethodPost, "/v1/subscriptions", `{"tenant_id":"acme","url":"https://a.example/one-more","event_types":["PLAYER_OPTED_IN"]}`)
	if status != http.StatusConflict || m["field"] != "tenant_id" || !strings.Contains(fmt.Sprint(m["error"]), "max_per_tenant") {
		t.Fatalf("create beyond the tenant limit: %d %v, want 409 naming tenant_id", status, m)
	}
	if n := f.count(); n != f.cfg.Subscriptions.MaxPerTenant {
		t.Fatalf("%d subscriptions stored", n)
	}
	if n := f.logs.FilterMessage("admin request failed").Len(); n != 0 {
		t.Fatalf("the limit was logged as a failure of the server (%d lines)", n)
	}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// rotate-secret gives a new secret, shown in clear once, and keeps the
// previous one signing for the grace period.
func TestRotateSigningSecret(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	first := subscriptions.NewSigningSecret()
	sub, err := f.store.Add(ctx, subscriptions.Subscription{TenantID: "acme", URL: "https://a.example/", EventTypes: event.Types[:1],
		SigningSecret: first, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	f.secrets = append(f.secrets, first)
	before := time.Now()
	got := f.mustCall(http.StatusOK, http.MethodPost, "/v1/subscriptions/"+sub.ID+"/rotate-secret", `{"grace":"2h"}`)
	next, _ := got["signing_secret"].(string)
	if _, err := subscriptions.DecodeSigningSecret(next); err != nil || next == first {
		t.Fatalf("new secret %q: %v", next, err)
	}
	shown := got["subscription"].(map[string]any)
	if shown["signing_secret"] != config.Mask(next) || shown["previous_signing_secret"] != config.Mask(first) {
		t.Fatalf("the subscription in the answer is not masked: %v", shown)
	}
	stored, _ := f.store.Get(ctx, sub.ID)
	if stored.SigningSecret != next || stored.PreviousSigningSecret != first ||
		stored.PreviousSecretExpiresAt.Before(before.Add(2*time.Hour-time.Second)) || stored.PreviousSecretExpiresAt.After(time.Now().Add(2*time.Hour)) {
		t.Fatalf("stored %+v", stored)
	}
	if keys, _ := stored.SigningKeys(time.Now()); len(keys) != 2 {
		t.Fatalf("%d signing keys during the grace period, want 2", len(keys))
	}
	for body, field := range map[string]string{`{"grace":"soon"}`: "grace", `{"grace":"-1h"}`: "grace", `{"signing_secret":"nope"}`: "signing_secret"} {
		if status, m := f.call(http.MethodPost, "/v1/subscriptions/"+sub.ID+"/rotate-secret", body); status != http.StatusBadRequest || m["field"] != field {
			t.Errorf("%s: %d %v", body, status, m)
		}
	}
	if status, _ := f.call(http.MethodPost, "/v1/subscriptions/nope/rotate-secret", ""); status != http.StatusNotFound {
		t.Errorf("unknown id: %d", status)
	}
	if after, _ := f.store.Get(ctx, sub.ID); after.SigningSecret != next {
		t.Fatal("a refused rotation changed the secret")
	}
}
