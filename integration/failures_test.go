package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/unibo/webhookd/delivery"
	"github.com/unibo/webhookd/internal/testenv"
	"github.com/unibo/webhookd/subscriptions"
)

func deadLetters(t *testing.T, s *suite, subID string) []delivery.Record {
	t.Helper()
	var out []delivery.Record
	_, err := delivery.ReadDeadLetters(context.Background(), s.cfg, delivery.DeadLetterFilter{SubscriptionID: subID},
		func(r delivery.Record) error { out = append(out, r); return nil })
	if err != nil {
		t.Fatalf("read dead letters: %v", err)
	}
	return out
}

func requestIDs(rc *testenv.Receiver) map[string]int {
	out := map[string]int{}
	for _, r := range rc.Requests() {
		var m map[string]any
		_ = json.Unmarshal(r.Body, &m)
		out[fmt.Sprint(m["request_id"])]++
	}
	return out
}

// Retries off (the guide's default): a partner answering 500 has every
// failed delivery dead-lettered; once it is healthy, replay brings all of
// them, with the webhook-id of the failed attempt, and a second replay is
// harmless for a partner that deduplicates on it.
func TestRetriesOffDeadLettersThenReplay(t *testing.T) {
	s := newSuite(t)
	var healthy atomic.Bool
	rc := testenv.NewReceiver(t)
	rc.SetRespond(func(testenv.Request) int {
		if healthy.Load() {
			return http.StatusOK
		}
		return http.StatusInternalServerError
	})
	sub := s.subscribe(subscriptions.Subscription{TenantID: "acme", URL: rc.URL, APIKey: "sk_replay_0123456789"})
	w := s.start()

	const n = 20
	for i := 0; i < n; i++ {
		s.publish(fmt.Sprint("p", i%7), payout("acme", "c1", fmt.Sprint("r-", i), fmt.Sprint("p", i%7)))
	}
	waitHandled(t, w, n)
	if got := w.Deliveries().DeadLettered.Load(); got != n {
		t.Fatalf("%d dead-lettered, want %d", got, n)
	}
	dead := deadLetters(t, s, sub.ID)
	failedIDs := map[string]string{} // request id → webhook-id of the failed attempt
	for _, r := range rc.Requests() {
		var m map[string]any
		_ = json.Unmarshal(r.Body, &m)
		failedIDs[fmt.Sprint(m["request_id"])] = r.Header.Get("Webhook-Id")
	}
	for _, r := range dead {
		if _, attempted := failedIDs[r.RequestID]; !attempted {
			failedIDs[r.RequestID] = r.WebhookID // skipped by the open circuit: never sent
		}
	}
	if len(dead) != n {
		t.Fatalf("%d records in the dead-letter topic, want %d", len(dead), n)
	}
	for _, r := range dead {
		// After 5 consecutive 500s the circuit opens: the rest are not
		// attempted, and go to the dead-letter topic all the same.
		circuit := r.LastStatus == 0 && strings.Contains(r.LastError, "circuit open")
		if r.Attempts != 1 || (r.LastStatus != 500 && !circuit) || r.Reason != delivery.ReasonNotRetryable ||
			r.TenantID != "acme" || r.EventType != "PRIZE_PAYOUT_SUCCEEDED" || r.DeadAt.IsZero() || r.WebhookID != failedIDs[r.RequestID] {
			t.Fatalf("dead letter %+v", r)
		}
	}

	healthy.Store(true)
	before := rc.Count()
	for round := 1; round <= 2; round++ {
		sum, err := delivery.Replay(context.Background(), s.cfg, s.store, delivery.DeadLetterFilter{SubscriptionID: sub.ID}, nil)
		if err != nil || sum.Total != n || sum.Delivered != n || sum.Failed != 0 {
			t.Fatalf("replay %d: %+v, %v", round, sum, err)
		}
	}
	replayed := rc.Requests()[before:]
	if len(replayed) != 2*n {
		t.Fatalf("%d replayed requests, want %d", len(replayed), 2*n)
	}
	for _, r := range replayed {
		var m map[string]any
		_ = json.Unmarshal(r.Body, &m)
		if id := r.Header.Get("Webhook-Id"); id == "" || id != failedIDs[fmt.Sprint(m["request_id"])] {
			t.Fatalf("replayed %v with webhook-id %q, failed attempt had %q", m["request_id"], id, failedIDs[fmt.Sprint(m["request_id"])])
		}
		if r.Header.Get("Authorization") != "Bearer sk_replay_0123456789" {
			t.Fatal("replay without the subscription's API key")
		}
	}
	t.Logf("dead-lettered %d, replayed %d twice: %d delivered", n, n, 2*n)
}

// Retries on: a partner that answers 503 and 500 for a while gets every
// delivery without any replay once it recovers, each attempt of an event
// with the same webhook-id; the source partitions never wait for it.
func TestRetriesOnDeliverEverything(t *testing.T) {
	s := newSuite(t)
	s.cfg.Delivery.Retry.MaxAttempts = 20 // skips by the open circuit count as attempts
	s.cfg.Delivery.Retry.MinBackoff = 100 * time.Millisecond
	s.cfg.Delivery.Retry.MaxBackoff = time.Second
	s.cfg.Delivery.Breaker.Cooldown = 300 * time.Millisecond
	var mu sync.Mutex
	attempts := map[string]int{}
	ids := map[string]map[string]bool{}
	var recoverAt atomic.Int64
	rc := testenv.NewReceiver(t)
	rc.SetRespond(func(r testenv.Request) int {
		var m map[string]any
		_ = json.Unmarshal(r.Body, &m)
		key := fmt.Sprint(m["request_id"])
		mu.Lock()
		defer mu.Unlock()
		attempts[key]++
		if ids[key] == nil {
			ids[key] = map[string]bool{}
		}
		ids[key][r.Header.Get("Webhook-Id")] = true
		recoverAt.CompareAndSwap(0, time.Now().Add(1500*time.Millisecond).UnixNano()) // fail for 1.5 s from the first request
		if time.Now().UnixNano() < recoverAt.Load() {
			if attempts[key]%2 == 1 {
				return http.StatusServiceUnavailable
			}
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	sub := s.subscribe(subscriptions.Subscription{TenantID: "acme", URL: rc.URL})
	w := s.start()

	const n = 30
	var msgs []kafka.Message
	for i := 0; i < n; i++ {
		msgs = append(msgs, kafka.Message{Topic: s.cfg.Kafka.Topics[0], Key: []byte(fmt.Sprint("p", i%5)),
			Value: []byte(payout("acme", "c1", fmt.Sprint("r-", i), fmt.Sprint("p", i%5)))})
	}
	testenv.Produce(t, s.cfg.Kafka.Brokers, msgs...)
	waitHandled(t, w, n) // the source partitions moved on while the partner was failing
	testenv.Eventually(t, 30*time.Second, "every event delivered after retries", func() bool {
		return w.Deliveries().Succeeded.Load() == n
	})
	mu.Lock()
	defer mu.Unlock()
	failedFirst := 0
	for key, a := range attempts {
		if a > 1 {
			failedFirst++
		}
		if len(ids[key]) != 1 {
			t.Errorf("%s arrived with %d different webhook-ids", key, len(ids[key]))
		}
	}
	if len(attempts) != n || failedFirst == 0 {
		t.Fatalf("%d events seen (want %d), %d of them failed at first", len(attempts), n, failedFirst)
	}
	if dead := deadLetters(t, s, sub.ID); len(dead) != 0 {
		t.Errorf("%d dead letters with retries on and a partner that recovers", len(dead))
	}
	t.Logf("%d events, %d failed at first, %d retry records, %d delivered, 0 dead-lettered",
		n, failedFirst, w.Deliveries().Retried.Load(), w.Deliveries().Succeeded.Load())
}

// Retries exhausted end in the dead-letter topic; a 410 Gone disables the
// subscription at once.
func TestRetriesExhaustedAndGoneDisables(t *testing.T) {
	s := newSuite(t)
	s.cfg.Delivery.Retry.MaxAttempts = 1
	s.cfg.Delivery.Retry.MinBackoff = 20 * time.Millisecond
	s.cfg.Delivery.Retry.MaxBackoff = 50 * time.Millisecond
	broken, gone := testenv.NewReceiver(t), testenv.NewReceiver(t)
	broken.SetRespond(func(testenv.Request) int { return http.StatusBadGateway })
	gone.SetRespond(func(testenv.Request) int { return http.StatusGone })
	sb := s.subscribe(subscriptions.Subscription{TenantID: "acme", URL: broken.URL, MaxAttempts: 3}) // its own retry setting
	sg := s.subscribe(subscriptions.Subscription{TenantID: "acme", URL: gone.URL})
	w := s.start()

	s.publish("p1", payout("acme", "c1", "r-1", "p1"))
	testenv.Eventually(t, 20*time.Second, "both failures dead-lettered", func() bool {
		return w.Deliveries().DeadLettered.Load() == 2
	})
	if broken.Count() != 3 {
		t.Errorf("broken endpoint attempted %d times, want the subscription's 3", broken.Count())
	}
	if d := deadLetters(t, s, sb.ID); len(d) != 1 || d[0].Attempts != 3 || d[0].Reason != delivery.ReasonExhausted || d[0].LastStatus != 502 {
		t.Errorf("exhausted dead letter %+v", d)
	}
	if d := deadLetters(t, s, sg.ID); len(d) != 1 || d[0].Reason != delivery.ReasonGone {
		t.Errorf("gone dead letter %+v", d)
	}
	got, err := s.store.Get(context.Background(), sg.ID)
	if err != nil || got.Enabled {
		t.Fatalf("subscription after 410: enabled=%v err=%v", got.Enabled, err)
	}
	if len(w.Logs.FilterMessage("subscription disabled: partner answered 410 Gone").All()) != 1 {
		t.Error("no log line saying why the subscription was disabled")
	}
}
