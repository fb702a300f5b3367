package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/unibo/webhookd/delivery"
	"github.com/unibo/webhookd/event"
	"github.com/unibo/webhookd/internal/testenv"
	"github.com/unibo/webhookd/subscriptions"
)

// Every example of the guide, published as a payout service would, reaches
// the partner byte for byte (whitespace aside) with exactly the guide's
// headers; the Authorization header only where an API key is set.
func TestGuideExamplesArriveExactly(t *testing.T) {
	s := newSuite(t)
	withKey, noKey := testenv.NewReceiver(t), testenv.NewReceiver(t)
	s.subscribe(subscriptions.Subscription{TenantID: "tenant-demo", URL: withKey.URL + "/hook", APIKey: "sk_live_0123456789abcdef"})
	s.subscribe(subscriptions.Subscription{TenantID: "tenant-demo", URL: noKey.URL + "/hook"})
	s.start()

	for _, ex := range event.Examples {
		topic := s.cfg.Kafka.Topics[0]
		if !ex.Type.IsPayout() {
			topic = s.cfg.Kafka.Topics[1] // any type may arrive on any configured topic
		}
		testenv.Produce(t, s.cfg.Kafka.Brokers, kafka.Message{Topic: topic, Key: []byte(ex.Name), Value: []byte(ex.Domain)})
	}
	n := len(event.Examples)
	testenv.Eventually(t, 30*time.Second, "every example at both endpoints", func() bool {
		return withKey.Count() >= n && noKey.Count() >= n
	})

	want := map[string]bool{}
	for _, ex := range event.Examples {
		want[compactJSON(t, ex.Payload)] = true
	}
	for name, rc := range map[string]*testenv.Receiver{"with key": withKey, "without key": noKey} {
		got := map[string]bool{}
		for _, r := range rc.Requests() {
			got[string(r.Body)] = true
			if r.Path != "/hook" {
				t.Errorf("%s: path %q", name, r.Path)
			}
			headers := []string{}
			for h := range r.Header {
				headers = append(headers, h)
			}
			sort.Strings(headers)
			wantHeaders := "Content-Length,Content-Type,User-Agent,Webhook-Id"
			if name == "with key" {
				wantHeaders = "Authorization,Content-Length,Content-Type,User-Agent,Webhook-Id"
			}
			if strings.Join(headers, ",") != wantHeaders {
				t.Errorf("%s: headers %v, want %s", name, headers, wantHeaders)
			}
			if r.Header.Get("Content-Type") != "application/json" || r.Header.Get("User-Agent") != "Unibo-Webhooks/1.0" {
				t.Errorf("%s: Content-Type %q User-Agent %q", name, r.Header.Get("Content-Type"), r.Header.Get("User-Agent"))
			}
			if name == "with key" && r.Header.Get("Authorization") != "Bearer sk_live_0123456789abcdef" {
				t.Errorf("Authorization %q", r.Header.Get("Authorization"))
			}
		}
		for body := range want {
			if !got[body] {
				t.Errorf("%s: guide payload never arrived: %s", name, body)
			}
		}
		if len(rc.Requests()) != n {
			t.Errorf("%s: %d requests for %d events", name, len(rc.Requests()), n)
		}
	}
}

// An event goes to the enabled subscriptions of its own tenant whose event
// types and campaign filter match, and nowhere else.
func TestMatchingTenantTypeCampaignAndDisabled(t *testing.T) {
	s := newSuite(t)
	all, payoutsC1, disabled, other := testenv.NewReceiver(t), testenv.NewReceiver(t), testenv.NewReceiver(t), testenv.NewReceiver(t)
	s.subscribe(subscriptions.Subscription{TenantID: "acme", URL: all.URL})
	s.subscribe(subscriptions.Subscription{TenantID: "acme", URL: payoutsC1.URL,
		EventTypes: []event.Type{event.PrizePayoutSucceeded}, CampaignIDs: []string{"c1"}})
	d := s.subscribe(subscriptions.Subscription{TenantID: "acme", URL: disabled.URL})
	if _, err := s.store.Update(context.Background(), d.ID, func(sub *subscriptions.Subscription) error {
		sub.Enabled = false
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	s.subscribe(subscriptions.Subscription{TenantID: "globex", URL: other.URL})
	w := s.start()

	events := []string{
		payout("acme", "c1", "r-acme-c1", "p1"),
		payout("acme", "c2", "r-acme-c2", "p2"),
		optIn("acme", "c1", "p3"),
		payout("globex", "c1", "r-globex-c1", "p4"),
		payout("initech", "c1", "r-nobody", "p5"), // a tenant with no subscription
	}
	for i, e := range events {
		s.publish(fmt.Sprint("k", i), e)
	}
	waitHandled(t, w, int64(len(events)))

	ids := func(rc *testenv.Receiver) []string {
		var out []string
		for _, r := range rc.Requests() {
			var m map[string]any
			if err := json.Unmarshal(r.Body, &m); err != nil {
				t.Fatalf("body %s: %v", r.Body, err)
			}
			if id, ok := m["request_id"].(string); ok {
				out = append(out, id)
			} else {
				out = append(out, fmt.Sprint(m["event_type"], "/", m["player_id"]))
			}
		}
		sort.Strings(out)
		return out
	}
	check := func(name string, rc *testenv.Receiver, want ...string) {
		t.Helper()
		sort.Strings(want)
		if got := ids(rc); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s received %v, want %v", name, got, want)
		}
	}
	check("acme all-events", all, "r-acme-c1", "r-acme-c2", "PLAYER_OPTED_IN/p3")
	check("acme payouts in c1", payoutsC1, "r-acme-c1")
	check("acme disabled", disabled)
	check("globex", other, "r-globex-c1")
}

// A 500 and a timeout are failures: logged once with the fields on-call
// needs, not retried, and the partition moves on (offsets committed).
func TestFailuresAreLoggedOnceAndNotRetried(t *testing.T) {
	s := newSuite(t)
	s.cfg.Delivery.Timeout = 300 * time.Millisecond
	broken, slow, healthy := testenv.NewReceiver(t), testenv.NewReceiver(t), testenv.NewReceiver(t)
	broken.SetRespond(func(testenv.Request) int { return http.StatusInternalServerError })
	slow.SetRespond(func(testenv.Request) int { time.Sleep(time.Second); return http.StatusOK })
	sb := s.subscribe(subscriptions.Subscription{TenantID: "acme", URL: broken.URL})
	ss := s.subscribe(subscriptions.Subscription{TenantID: "acme", URL: slow.URL})
	s.subscribe(subscriptions.Subscription{TenantID: "acme", URL: healthy.URL})
	w := s.start()

	s.publish("player-1", payout("acme", "c1", "req-1", "player-1"), payout("acme", "c1", "req-2", "player-1"))
	waitHandled(t, w, 2)
	testenv.Eventually(t, 10*time.Second, "offsets committed past both events", func() bool {
		c, e := committed(t, s.cfg, s.cfg.Kafka.Topics[0]), endOffsets(t, s.cfg, s.cfg.Kafka.Topics[0])
		for p, end := range e {
			if end > 0 && c[p] != end {
				return false
			}
		}
		return true
	})
	time.Sleep(500 * time.Millisecond) // a retry, if there were one, would show now

	if broken.Count() != 2 || slow.Count() != 2 || healthy.Count() != 2 {
		t.Fatalf("requests: broken %d slow %d healthy %d, want 2 each (no retries)", broken.Count(), slow.Count(), healthy.Count())
	}
	failures := w.Logs.FilterMessage("webhook delivery failed; not retried").All()
	if len(failures) != 4 {
		t.Fatalf("%d failure log lines, want 4 (2 events × 2 failing endpoints)", len(failures))
	}
	seen := map[string]int{}
	for _, f := range failures {
		m := f.ContextMap()
		for _, k := range []string{"subscription_id", "event_type", "request_id", "status", "duration", "error"} {
			if _, ok := m[k]; !ok {
				t.Errorf("failure log lacks %s: %v", k, m)
			}
		}
		seen[fmt.Sprint(m["subscription_id"], "/", m["request_id"])]++
		switch m["subscription_id"] {
		case sb.ID:
			if m["status"] != int64(500) {
				t.Errorf("broken endpoint logged status %v", m["status"])
			}
		case ss.ID:
			if !strings.Contains(fmt.Sprint(m["error"]), delivery.ErrTimeout.Error()) {
				t.Errorf("slow endpoint logged error %v", m["error"])
			}
		default:
			t.Errorf("failure logged for %v", m["subscription_id"])
		}
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%s logged %d times", k, n)
		}
	}
}

// Malformed input, unknown event types and missing fields are skipped with a
// log line naming topic/partition/offset and the reason; the valid events
// behind them on the same partition are delivered.
func TestInvalidEventsAreSkippedWithoutStalling(t *testing.T) {
	s := newSuite(t)
	s.cfg.Kafka.Partitions = 1
	rc := testenv.NewReceiver(t)
	s.subscribe(subscriptions.Subscription{TenantID: "acme", URL: rc.URL})
	w := s.start()

	raws := []string{
		`{"tenant_id":"acme","event_type":`,
		`{"tenant_id":"acme","event_type":"PRIZE_PAYOUT_EXPLODED","campaign_id":"c"}`,
		`{"tenant_id":"acme","event_type":"PLAYER_OPTED_IN","player_id":"p"}`,
		`["not","an","object"]`,
	}
	s.publish("same-key", append(raws, payout("acme", "c1", "after-the-junk", "p1"))...)
	waitHandled(t, w, 5)
	testenv.Eventually(t, 5*time.Second, "valid event delivered", func() bool { return rc.Count() == 1 })
	if !strings.Contains(string(rc.Requests()[0].Body), "after-the-junk") {
		t.Fatalf("delivered %s", rc.Requests()[0].Body)
	}
	if got := w.Consumer().Stats().Invalid.Load(); got != 4 {
		t.Fatalf("invalid count %d, want 4", got)
	}
	skipped := w.Logs.FilterMessage("skipping invalid message").All()
	if len(skipped) != 4 {
		t.Fatalf("%d skip log lines, want 4", len(skipped))
	}
	// Nothing read is lost: the invalid messages are in the invalid topic,
	// raw bytes and reason.
	invalid := readTopic(t, s.cfg.Kafka.Brokers, s.cfg.Consumer.InvalidTopic, 4)
	for i, m := range invalid {
		if string(m.Value) != raws[i] {
			t.Errorf("invalid topic message %d: %q, want the raw %q", i, m.Value, raws[i])
		}
		if header(m, "webhookd-reason") == "" || header(m, "webhookd-source-offset") != fmt.Sprint(i) {
			t.Errorf("invalid topic message %d headers %v", i, m.Headers)
		}
	}
	reasons := []string{"not valid JSON", "unknown event type", `"campaign_id"`, "not a JSON object"}
	for i, e := range skipped {
		m := e.ContextMap()
		if m["topic"] != s.cfg.Kafka.Topics[0] || m["partition"] != int64(0) || m["offset"] != int64(i) {
			t.Errorf("skip line %d locates %v/%v/%v", i, m["topic"], m["partition"], m["offset"])
		}
		if !strings.Contains(fmt.Sprint(m["reason"]), reasons[i]) {
			t.Errorf("skip line %d reason %q, want it to mention %s", i, m["reason"], reasons[i])
		}
	}
}

// After a clean stop, a new worker of the same group resumes after the
// committed offsets: nothing already delivered arrives again, new events
// flow.
func TestCleanRestartResumesWithoutRedelivery(t *testing.T) {
	s := newSuite(t)
	rc := testenv.NewReceiver(t)
	s.subscribe(subscriptions.Subscription{TenantID: "acme", URL: rc.URL})
	first := s.start()
	for i := 0; i < 20; i++ {
		s.publish(fmt.Sprint("player-", i%5), payout("acme", "c1", fmt.Sprint("before-", i), fmt.Sprint("player-", i%5)))
	}
	waitHandled(t, first, 20)
	first.Stop(t)

	second := s.start()
	for i := 0; i < 5; i++ {
		s.publish(fmt.Sprint("player-", i), payout("acme", "c1", fmt.Sprint("after-", i), fmt.Sprint("player-", i)))
	}
	waitHandled(t, second, 5)
	time.Sleep(300 * time.Millisecond)
	if got := second.Consumer().Stats().Handled.Load(); got != 5 {
		t.Fatalf("second worker handled %d messages, want only the 5 new ones", got)
	}
	counts := map[string]int{}
	for _, r := range rc.Requests() {
		var m map[string]any
		_ = json.Unmarshal(r.Body, &m)
		counts[fmt.Sprint(m["request_id"])]++
	}
	if len(counts) != 25 {
		t.Fatalf("%d distinct events delivered, want 25", len(counts))
	}
	for id, n := range counts {
		if n != 1 {
			t.Errorf("%s delivered %d times", id, n)
		}
	}
}

// A subscription added while the worker runs is used within 2 s.
func TestSubscriptionAddedWhileRunningIsUsedWithin2s(t *testing.T) {
	s := newSuite(t)
	early := testenv.NewReceiver(t)
	s.subscribe(subscriptions.Subscription{TenantID: "acme", URL: early.URL})
	w := s.start()

	late := testenv.NewReceiver(t)
	s.subscribe(subscriptions.Subscription{TenantID: "acme", URL: late.URL})
	time.Sleep(2 * time.Second)
	s.publish("p", payout("acme", "c1", "published-2s-after-add", "p"))
	waitHandled(t, w, 1)
	if late.Count() != 1 {
		t.Fatalf("new subscription got %d deliveries of an event published 2 s after it was added", late.Count())
	}
}

// Events with the same key are delivered in order even though different
// keys are delivered concurrently and the partner answers at random speeds.
func TestSameKeyOrderUnderConcurrency(t *testing.T) {
	s := newSuite(t)
	rc := testenv.NewReceiver(t)
	rc.SetRespond(func(r testenv.Request) int {
		time.Sleep(time.Duration(len(r.Body)%7) * time.Millisecond)
		return http.StatusOK
	})
	s.subscribe(subscriptions.Subscription{TenantID: "acme", URL: rc.URL})
	w := s.start()

	const keys, perKey = 20, 25
	var msgs []kafka.Message
	for i := 0; i < perKey; i++ {
		for k := 0; k < keys; k++ {
			key := fmt.Sprintf("player-%02d", k)
			msgs = append(msgs, kafka.Message{Topic: s.cfg.Kafka.Topics[0], Key: []byte(key),
				Value: []byte(payout("acme", "c1", fmt.Sprintf("%s/%03d", key, i), key))})
		}
	}
	testenv.Produce(t, s.cfg.Kafka.Brokers, msgs...)
	waitHandled(t, w, keys*perKey)

	last := map[string]int{}
	for _, r := range rc.Requests() {
		var m map[string]string
		_ = json.Unmarshal(r.Body, &m)
		var key string
		var seq int
		if _, err := fmt.Sscanf(strings.Replace(m["request_id"], "/", " ", 1), "%s %d", &key, &seq); err != nil {
			t.Fatalf("request_id %q: %v", m["request_id"], err)
		}
		if prev, ok := last[key]; ok && seq != prev+1 {
			t.Fatalf("key %s: %d delivered after %d", key, seq, prev)
		}
		last[key] = seq
	}
	if rc.Count() != keys*perKey {
		t.Fatalf("%d deliveries, want %d", rc.Count(), keys*perKey)
	}
}

// readTopic reads the first n messages of partition 0 of topic.
func readTopic(t *testing.T, brokers []string, topic string, n int) []kafka.Message {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: 0, MaxWait: 200 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []kafka.Message
	for len(out) < n {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read %s: %v (got %d of %d)", topic, err, len(out), n)
		}
		out = append(out, m)
	}
	return out
}

func header(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
