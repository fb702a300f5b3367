package admin_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/unibo/webhookd/delivery"
	"github.com/unibo/webhookd/event"
	"github.com/unibo/webhookd/subscriptions"
)

// guidePartner answers as the guide recommends: 401 without the right key,
// 400 for invalid JSON or a payload without event_type, 200 otherwise. With
// echo set it also writes the Authorization header it got into its answer.
func guidePartner(t *testing.T, key string, echo bool, hits *atomic.Int64) *httptest.Server {
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
		if echo {
			_, _ = w.Write([]byte(`{"you_sent":"` + r.Header.Get("Authorization") + `"}`))
			return
		}
		_, _ = w.Write([]byte(`{"received":true}`))
	}))
	t.Cleanup(srv.Close)
	return srv
}

type probeReport struct {
	SubscriptionID string `json:"subscription_id"`
	URL            string `json:"url"`
	Passed, Failed int
	Results        []struct {
		Test, Expected, Answer, Error string
		OK                            bool
		Status                        int
	}
}

func (f *fixture) probe(path, body string) probeReport {
	f.t.Helper()
	rec := f.request(http.MethodPost, path, body, "Bearer "+testToken)
	if rec.Code != http.StatusOK {
		f.t.Fatalf("POST %s %s: %d %s", path, body, rec.Code, rec.Body)
	}
	var rep probeReport
	if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
		f.t.Fatal(err)
	}
	return rep
}

// The admin API's send-test sends what `webhookd subscriptions test` sends,
// to the stored subscription's URL with its key, and reports each answer
// against the guide's recommendation.
func TestSendTestToAStoredSubscription(t *testing.T) {
	f := newFixture(t, noDeadLetters{})
	f.secrets = append(f.secrets, testAPIKey)
	var hits atomic.Int64
	partner := guidePartner(t, testAPIKey, false, &hits)
	sub, err := f.store.Add(context.Background(), subscriptions.Subscription{TenantID: "acme", URL: partner.URL,
		EventTypes: event.Types[:1], APIKey: testAPIKey, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}

	all := delivery.AllProbeCases()
	rep := f.probe("/v1/subscriptions/"+sub.ID+"/test", "")
	if rep.SubscriptionID != sub.ID || rep.URL != partner.URL || rep.Passed != len(all) || rep.Failed != 0 ||
		len(rep.Results) != len(all) || hits.Load() != int64(len(all)) {
		t.Fatalf("%d requests, report %+v; want %d tests, all ok", hits.Load(), rep, len(all))
	}
	for i, r := range rep.Results {
		if r.Test != all[i].Name || !r.OK || r.Expected != all[i].Want {
			t.Errorf("result %d: %+v, want test %q ok", i, r, all[i].Name)
		}
	}

	// One scenario, selected by the body.
	rep = f.probe("/v1/subscriptions/"+sub.ID+"/test", `{"scenario":"wrong-api-key"}`)
	if len(rep.Results) != 1 || rep.Results[0].Status != 401 || !rep.Results[0].OK {
		t.Fatalf("wrong-api-key: %+v", rep)
	}
	// One example.
	rep = f.probe("/v1/subscriptions/"+sub.ID+"/test", `{"event_type":"PRIZE_PAYOUT_CREATED","prize_type":"free_spins"}`)
	if len(rep.Results) != 1 || rep.Results[0].Status != 200 || !strings.Contains(rep.Results[0].Test, "free spins") {
		t.Fatalf("one example: %+v", rep)
	}

	// A partner that accepts anything fails the error scenarios.
	lax := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer lax.Close()
	rep = f.probe("/v1/send-test", `{"url":"`+lax.URL+`","scenario":"invalid-json"}`)
	if rep.Failed != 1 || rep.Results[0].OK || rep.Results[0].Status != 200 || rep.Results[0].Expected != "400" {
		t.Fatalf("a partner answering 200 to invalid JSON: %+v", rep)
	}
}

func TestSendTestToAURL(t *testing.T) {
	f := newFixture(t, noDeadLetters{})
	f.secrets = append(f.secrets, testAPIKey)
	var hits atomic.Int64
	partner := guidePartner(t, testAPIKey, true, &hits)

	rep := f.probe("/v1/send-test", `{"url":"`+partner.URL+`","api_key":"`+testAPIKey+`","event_type":"PLAYER_OPTED_IN"}`)
	if len(rep.Results) != 1 || !rep.Results[0].OK || hits.Load() != 1 {
		t.Fatalf("%+v", rep)
	}
	// The partner echoed the key: the answer shows it masked.
	if !strings.Contains(rep.Results[0].Answer, "****6789") {
		t.Fatalf("answer %q: want the echoed key masked", rep.Results[0].Answer)
	}

	for _, c := range []struct{ body, field string }{
		{`{"url":"ftp://x.example/"}`, "url"},
		{`{"api_key":"k"}`, "url"},
		{`{"url":"` + partner.URL + `","scenario":"flaky"}`, "scenario"},
		{`{"url":"` + partner.URL + `","event_type":"PRIZE_WON"}`, "event_type"},
		{`{"url":"` + partner.URL + `","event_type":"PLAYER_OPTED_IN","scenario":"slow"}`, "scenario"},
		{`{"url":"` + partner.URL + `","event_type":"PRIZE_PAYOUT_CREATED","prize_type":"car"}`, "prize_type"},
		{`{"url":"` + partner.URL + `","timeout":"forever"}`, "timeout"},
		{`{"url":"` + partner.URL + `","all":true}`, "all"},
	} {
		status, m := f.call(http.MethodPost, "/v1/send-test", c.body)
		if status != http.StatusBadRequest || m["field"] != c.field {
			t.Errorf("%s: %d %v, want 400 naming %s", c.body, status, m, c.field)
		}
	}
	if hits.Load() != 1 {
		t.Fatalf("invalid send-tests sent %d requests", hits.Load()-1)
	}
}
