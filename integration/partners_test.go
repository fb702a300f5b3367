package integration

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/unibo/webhookd/internal/testenv"
	"github.com/unibo/webhookd/subscriptions"
)

// Partners as they are (issue 11): one partner's pace never sets another's.

// A partner that asks for an hour (503 + Retry-After: 3600) holds back only
// its own deliveries: the retries of another partner, of the same keys and
// so of the same retry partitions, are attempted when due, not an hour
// later. Before the delay tiers, a retry lane slept until its record was
// due, and every retry of its keys waited behind it.
func TestAnHourlongRetryAfterDelaysNoOtherPartnersRetries(t *testing.T) {
	s := newSuite(t)
	s.cfg.Delivery.Retry.MaxAttempts = 3
	s.cfg.Delivery.Retry.MinBackoff = 50 * time.Millisecond
	s.cfg.Delivery.Retry.MaxBackoff = 50 * time.Millisecond
	s.cfg.Delivery.Breaker.Failures = 1000 // a first failure per event is no outage
	paused := testenv.NewReceiver(t)
	paused.SetRespond(func(testenv.Request) int { return http.StatusServiceUnavailable })
	paused.SetHeader(func(testenv.Request) http.Header { return http.Header{"Retry-After": {"3600"}} })
	var mu sync.Mutex
	seen := map[string]int{} // webhook-id → requests
	flaky := testenv.NewReceiver(t)
	flaky.SetRespond(func(r testenv.Request) int {
		mu.Lock()
		defer mu.Unlock()
		seen[r.Header.Get("Webhook-Id")]++
		if seen[r.Header.Get("Webhook-Id")] == 1 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	s.subscribe(subscriptions.Subscription{TenantID: "acme", URL: paused.URL})
	s.subscribe(subscriptions.Subscription{TenantID: "acme", URL: flaky.URL})
	w := s.start()

	const n = 20
	var msgs []kafka.Message
	for i := range n {
		key := fmt.Sprint("p", i%2) // two keys: every retry partition holds both partners' records
		msgs = append(msgs, kafka.Message{Topic: s.cfg.Kafka.Topics[0], Key: []byte(key),
			Value: []byte(payout("acme", "c1", fmt.Sprint("r-", i), key))})
	}
	testenv.Produce(t, s.cfg.Kafka.Brokers, msgs...)
	testenv.Eventually(t, 30*time.Second, "every retry of the flaky partner delivered", func() bool {
		return w.Deliveries().Succeeded.Load() == n
	})
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != n {
		t.Fatalf("flaky partner saw %d webhook ids, want %d", len(seen), n)
	}
	for id, c := range seen {
		if c != 2 {
			t.Errorf("%s: %d requests, want 2 (a failure, then its retry)", id, c)
		}
	}
	if got := paused.Count(); got != n {
		t.Errorf("the partner that asked for an hour got %d requests, want %d (no retry before its Retry-After)", got, n)
	}
	if got := w.Deliveries().DeadLettered.Load(); got != 0 {
		t.Errorf("%d dead letters, want none", got)
	}
}
