package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/unibo/webhookd/delivery"
	"github.com/unibo/webhookd/event"
	"github.com/unibo/webhookd/internal/testenv"
	"github.com/unibo/webhookd/subscriptions"
)

// deadLetter writes a dead letter as the worker does (see KafkaSink.Dead).
func deadLetter(t *testing.T, f *fixture, subID, requestID string, deadAt time.Time) delivery.Record {
	t.Helper()
	body := fmt.Sprintf(`{"player_id":"p1","campaign_id":"c1","event_type":"PLAYER_OPTED_IN","request":%q}`, requestID)
	r := delivery.Record{
		WebhookID: "msg_" + requestID, SubscriptionID: subID, TenantID: "acme", EventType: event.PlayerOptedIn,
		RequestID: requestID, Body: json.RawMessage(body), Attempts: 1, LastStatus: 500,
		Reason: delivery.ReasonNotRetryable, FirstAttempt: deadAt, LastAttempt: deadAt, DeadAt: deadAt,
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Produce(t, f.cfg.Kafka.Brokers, kafka.Message{Topic: f.cfg.Delivery.DLQ.Topic, Key: []byte(subID), Value: b})
	return r
}

type deadLetterList struct {
	DeadLetters []delivery.Record `json:"dead_letters"`
	Count       int
	Truncated   bool
	Skipped     int
}

func (f *fixture) deadLetters(query string) deadLetterList {
	f.t.Helper()
	rec := f.request(http.MethodGet, "/v1/dead-letters?"+query, "", "Bearer "+testToken)
	if rec.Code != http.StatusOK {
		f.t.Fatalf("GET /v1/dead-letters?%s: %d %s", query, rec.Code, rec.Body)
	}
	var l deadLetterList
	if err := json.Unmarshal(rec.Body.Bytes(), &l); err != nil {
		f.t.Fatal(err)
	}
	return l
}

// Dead letters listed and replayed through the API, on the test Kafka: the
// filters of `dlq list`, and `replay`'s redelivery with the original body
// and webhook-id to the subscription's current URL and key.
func TestDeadLettersListAndReplay(t *testing.T) {
	f := newFixture(t, nil)
	f.secrets = append(f.secrets, testAPIKey)
	dlq := f.cfg
	dlq.Kafka.Topics = []string{f.cfg.Delivery.DLQ.Topic}
	testenv.CreateTopics(t, dlq)

	ctx := context.Background()
	rc := testenv.NewReceiver(t)
	sub, err := f.store.Add(ctx, subscriptions.Subscription{ID: "sub-a", TenantID: "acme", URL: rc.URL,
		EventTypes: event.Types[:], APIKey: testAPIKey, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	old := deadLetter(t, f, sub.ID, "r-old", now.Add(-3*time.Hour))
	recent1 := deadLetter(t, f, sub.ID, "r-1", now.Add(-time.Hour))
	recent2 := deadLetter(t, f, sub.ID, "r-2", now.Add(-time.Minute))
	deadLetter(t, f, "sub-b", "r-b", now.Add(-time.Minute))

	if l := f.deadLetters(""); l.Count != 4 || len(l.DeadLetters) != 4 || l.Truncated {
		t.Fatalf("all dead letters: %+v", l)
	}
	l := f.deadLetters("subscription=" + sub.ID)
	if l.Count != 3 {
		t.Fatalf("sub-a's dead letters: %+v", l)
	}
	got := l.DeadLetters[0]
	if got.WebhookID != old.WebhookID || string(got.Body) != string(old.Body) || got.Reason != delivery.ReasonNotRetryable || !got.DeadAt.Equal(old.DeadAt) {
		t.Fatalf("first dead letter %+v, want %+v", got, old)
	}
	if l := f.deadLetters("subscription=" + sub.ID + "&since=2h"); l.Count != 2 || l.DeadLetters[0].RequestID != "r-1" {
		t.Fatalf("since=2h: %+v", l)
	}
	until := url.QueryEscape(now.Add(-30 * time.Minute).Format(time.RFC3339))
	if l := f.deadLetters("subscription=" + sub.ID + "&until=" + until); l.Count != 2 || l.DeadLetters[1].RequestID != "r-1" {
		t.Fatalf("until=%s: %+v", until, l)
	}
	if l := f.deadLetters("limit=1"); l.Count != 1 || !l.Truncated {
		t.Fatalf("limit=1: %+v", l)
	}
	// An until before since is no error, as in `dlq list`: it matches nothing.
	if l := f.deadLetters("since=1h&until=2h"); l.Count != 0 || len(l.DeadLetters) != 0 {
		t.Fatalf("since=1h&until=2h: %+v", l)
	}
	for query, field := range map[string]string{"since=yesterday": "since", "until=-2h": "until", "limit=0": "limit", "subscriptions=x": "subscriptions", "since=": "since", "limit=": "limit"} {
		if status, m := f.call(http.MethodGet, "/v1/dead-letters?"+query, ""); status != http.StatusBadRequest || m["field"] != field {
			t.Errorf("?%s: %d %v, want 400 naming %s", query, status, m, field)
		}
	}

	// Replay the last two hours of sub-a, twice: the same webhook-ids each time.
	for round := 1; round <= 2; round++ {
		m := f.mustCall(http.StatusOK, http.MethodPost, "/v1/dead-letters/replay", `{"subscription_id":"sub-a","since":"2h"}`)
		if m["total"] != 2.0 || m["delivered"] != 2.0 || m["failed"] != 0.0 || len(m["failures"].([]any)) != 0 {
			t.Fatalf("replay %d: %v", round, m)
		}
	}
	reqs := rc.Requests()
	if len(reqs) != 4 {
		t.Fatalf("%d requests at the partner, want 2 per replay", len(reqs))
	}
	for i, r := range reqs {
		want := []delivery.Record{recent1, recent2}[i%2]
		if r.Header.Get("Webhook-Id") != want.WebhookID || string(r.Body) != string(want.Body) || r.Header.Get("Authorization") != "Bearer "+testAPIKey {
			t.Fatalf("replayed request %d: webhook-id %q body %s, want %q %s with the key", i, r.Header.Get("Webhook-Id"), r.Body, want.WebhookID, want.Body)
		}
	}

	// A partner still failing: the summary lists what failed again.
	rc.SetRespond(func(testenv.Request) int { return http.StatusBadGateway })
	m := f.mustCall(http.StatusOK, http.MethodPost, "/v1/dead-letters/replay", `{"subscription_id":"sub-a"}`)
	failures := m["failures"].([]any)
	if m["total"] != 3.0 || m["failed"] != 3.0 || len(failures) != 3 || failures[0].(map[string]any)["webhook_id"] != old.WebhookID ||
		failures[0].(map[string]any)["status"] != 502.0 {
		t.Fatalf("replay to a failing partner: %v", m)
	}

	// Refused before anything is sent: unknown, disabled, no subscription.
	before := rc.Count()
	if status, _ := f.call(http.MethodPost, "/v1/dead-letters/replay", `{"subscription_id":"nope"}`); status != http.StatusNotFound {
		t.Errorf("replay of an unknown subscription: %d", status)
	}
	f.mustCall(http.StatusOK, http.MethodPost, "/v1/subscriptions/sub-a/disable", "")
	if status, m := f.call(http.MethodPost, "/v1/dead-letters/replay", `{"subscription_id":"sub-a"}`); status != http.StatusConflict || m["field"] != "subscription_id" {
		t.Errorf("replay of a disabled subscription: %d %v", status, m)
	}
	if status, m := f.call(http.MethodPost, "/v1/dead-letters/replay", `{"since":"2h"}`); status != http.StatusBadRequest || m["field"] != "subscription_id" {
		t.Errorf("replay without a subscription: %d %v", status, m)
	}
	if rc.Count() != before {
		t.Fatalf("refused replays sent %d requests", rc.Count()-before)
	}
}
