package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/unibo/webhookd/config"
	"github.com/unibo/webhookd/delivery"
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
	// Its first 503 paused it: the deliveries after it wait for the hour
	// without a request, and none is sent twice.
	ids := map[string]bool{}
	for _, r := range paused.Requests() {
		if id := r.Header.Get("Webhook-Id"); ids[id] {
			t.Errorf("the partner that asked for an hour got %s again before its Retry-After", id)
		}
		ids[r.Header.Get("Webhook-Id")] = true
	}
	if len(ids) == 0 || len(ids) == n {
		t.Errorf("the partner that asked for an hour got %d of %d events; want the first, then none during its pause", len(ids), n)
	}
	if got := w.Deliveries().DeadLettered.Load(); got != 0 {
		t.Errorf("%d dead letters, want none", got)
	}
}

// A partner that rate-limits (429 + Retry-After, as the guide tells it to)
// gets every event once it takes them again, with retries off: a 429 is
// "not yet", never a dead letter, and each event keeps its webhook-id. Under
// delivery.backpressure strict the same 429s are failed attempts and end in
// the dead-letter topic, as the guide reads literally.
func TestRateLimitingPartnerGetsEverythingUnlessStrict(t *testing.T) {
	for _, mode := range []string{config.BackpressureDefer, config.BackpressureStrict} {
		t.Run(mode, func(t *testing.T) {
			s := newSuite(t)
			s.cfg.Delivery.Backpressure = mode
			var mu sync.Mutex
			var calls int
			ok := map[string]int{} // webhook-id → 200s
			rc := testenv.NewReceiver(t)
			const limited = 8 // the first requests are refused
			rc.SetRespond(func(r testenv.Request) int {
				mu.Lock()
				defer mu.Unlock()
				calls++
				if calls <= limited {
					return http.StatusTooManyRequests
				}
				ok[r.Header.Get("Webhook-Id")]++
				return http.StatusOK
			})
			rc.SetHeader(func(testenv.Request) http.Header { return http.Header{"Retry-After": {"1"}} })
			sub := s.subscribe(subscriptions.Subscription{TenantID: "acme", URL: rc.URL})
			w := s.start()
			const n = 20
			var msgs []kafka.Message
			for i := range n {
				key := fmt.Sprint("p", i%4)
				msgs = append(msgs, kafka.Message{Topic: s.cfg.Kafka.Topics[0], Key: []byte(key),
					Value: []byte(payout("acme", "c1", fmt.Sprint("r-", i), key))})
			}
			testenv.Produce(t, s.cfg.Kafka.Brokers, msgs...)
			testenv.Eventually(t, 30*time.Second, "every event delivered or dead-lettered", func() bool {
				st := w.Deliveries()
				return st.Succeeded.Load()+st.DeadLettered.Load() == n
			})
			dead := deadLetters(t, s, sub.ID)
			mu.Lock()
			defer mu.Unlock()
			for id, c := range ok {
				if c != 1 {
					t.Errorf("%s accepted %d times", id, c)
				}
			}
			switch mode {
			case config.BackpressureDefer:
				if len(ok) != n || len(dead) != 0 {
					t.Fatalf("defer: %d events accepted, %d dead letters; want %d and 0", len(ok), len(dead), n)
				}
				if w.Deliveries().Deferred.Load() == 0 {
					t.Error("no deferral counted")
				}
			case config.BackpressureStrict:
				if len(dead) == 0 || len(ok)+len(dead) != n {
					t.Fatalf("strict: %d accepted, %d dead letters; want some dead letters and %d in all", len(ok), len(dead), n)
				}
				for _, d := range dead {
					if d.LastStatus != http.StatusTooManyRequests || d.Reason != delivery.ReasonNotRetryable {
						t.Errorf("strict dead letter: last status %d reason %s", d.LastStatus, d.Reason)
					}
				}
			}
		})
	}
}

// Order per (subscription, key) holds across deferrals: a partner that
// refuses every fifth request with 429 + Retry-After gets each key's
// events in the order they were produced, each once, although the refused
// ones went through the retry tiers and the ones after them came from the
// source partition. The chain (package order) holds the later ones behind
// the deferred one. A second, healthy partner gets every key in order too.
func TestOrderPerSubscriptionAndKeyHoldsAcrossDeferrals(t *testing.T) {
	s := newSuite(t)
	var mu sync.Mutex
	calls := 0
	accepted := map[string][]string{} // receiver → key → request ids, in arrival order
	record := func(name string, r testenv.Request) {
		var body struct {
			RequestID string `json:"request_id"`
			PlayerID  string `json:"player_id"`
		}
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		k := name + "/" + body.PlayerID
		accepted[k] = append(accepted[k], body.RequestID)
	}
	limited := testenv.NewReceiver(t)
	limited.SetRespond(func(r testenv.Request) int {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls%5 == 0 {
			return http.StatusTooManyRequests
		}
		record("limited", r)
		return http.StatusOK
	})
	limited.SetHeader(func(testenv.Request) http.Header { return http.Header{"Retry-After": {"1"}} })
	healthy := testenv.NewReceiver(t)
	healthy.SetRespond(func(r testenv.Request) int {
		mu.Lock()
		defer mu.Unlock()
		record("healthy", r)
		return http.StatusOK
	})
	s.subscribe(subscriptions.Subscription{TenantID: "acme", URL: limited.URL})
	s.subscribe(subscriptions.Subscription{TenantID: "acme", URL: healthy.URL})
	w := s.start()

	const n, keys = 30, 3
	var msgs []kafka.Message
	want := map[string][]string{}
	for i := range n {
		key := fmt.Sprint("player-", i%keys)
		id := fmt.Sprintf("r-%02d", i)
		want[key] = append(want[key], id)
		msgs = append(msgs, kafka.Message{Topic: s.cfg.Kafka.Topics[0], Key: []byte(key),
			Value: []byte(payout("acme", "c1", id, key))})
	}
	testenv.Produce(t, s.cfg.Kafka.Brokers, msgs...)
	testenv.Eventually(t, 90*time.Second, "every event delivered to both partners", func() bool {
		return w.Deliveries().Succeeded.Load() >= 2*n
	})
	mu.Lock()
	defer mu.Unlock()
	for _, name := range []string{"limited", "healthy"} {
		for key, ids := range want {
			if got := accepted[name+"/"+key]; !slices.Equal(got, ids) {
				t.Errorf("%s, key %s: accepted %v, want %v", name, key, got, ids)
			}
		}
	}
	if st := w.Deliveries(); st.DeadLettered.Load() != 0 || st.Deferred.Load() == 0 {
		t.Errorf("%d dead letters (want 0), %d deferrals (want some)", st.DeadLettered.Load(), st.Deferred.Load())
	}
}

// A subscription's max_rate caps what its partner receives in any second,
// without losing, dead-lettering or reordering anything, and without
// slowing another subscription of the same events.
func TestMaxRateCapsItsSubscriptionOnly(t *testing.T) {
	s := newSuite(t)
	const maxRate = 20
	var mu sync.Mutex
	arrivals := map[string][]time.Time{} // receiver → arrival times
	order := map[string][]string{}       // receiver/key → request ids, in arrival order
	cappedWhenFreeDone := -1             // the capped partner's count when the free one had all
	const n = 120
	record := func(name string, r testenv.Request) {
		var body struct {
			RequestID string `json:"request_id"`
			PlayerID  string `json:"player_id"`
		}
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		mu.Lock()
		defer mu.Unlock()
		arrivals[name] = append(arrivals[name], time.Now())
		if name == "free" && len(arrivals[name]) == n {
			cappedWhenFreeDone = len(arrivals["capped"])
		}
		k := name + "/" + body.PlayerID
		order[k] = append(order[k], body.RequestID)
	}
	capped, free := testenv.NewReceiver(t), testenv.NewReceiver(t)
	capped.SetRespond(func(r testenv.Request) int { record("capped", r); return http.StatusOK })
	free.SetRespond(func(r testenv.Request) int { record("free", r); return http.StatusOK })
	s.subscribe(subscriptions.Subscription{TenantID: "acme", URL: capped.URL, MaxRate: maxRate})
	s.subscribe(subscriptions.Subscription{TenantID: "acme", URL: free.URL})
	w := s.start()

	// More keys than max_rate: a (subscription, key)'s deliveries go one
	// at a time, so with fewer keys than a second's tokens none would ever
	// wait long enough to be deferred.
	const keys = 40
	var msgs []kafka.Message
	want := map[string][]string{}
	for i := range n {
		key := fmt.Sprint("player-", i%keys)
		id := fmt.Sprintf("r-%03d", i)
		want[key] = append(want[key], id)
		msgs = append(msgs, kafka.Message{Topic: s.cfg.Kafka.Topics[0], Key: []byte(key),
			Value: []byte(payout("acme", "c1", id, key))})
	}
	testenv.Produce(t, s.cfg.Kafka.Brokers, msgs...)
	testenv.Eventually(t, 90*time.Second, "every event delivered to both partners", func() bool {
		return w.Deliveries().Succeeded.Load() >= 2*n
	})
	mu.Lock()
	defer mu.Unlock()
	for _, name := range []string{"capped", "free"} {
		for key, ids := range want {
			if got := order[name+"/"+key]; !slices.Equal(got, ids) {
				t.Errorf("%s, key %s: received %v, want %v", name, key, got, ids)
			}
		}
	}
	// In any second, at most max_rate and the bucket's one token (and a
	// little for the network's jitter); without the cap all 120 arrive
	// within a second.
	at := arrivals["capped"]
	busiest := 0
	for i := range at {
		j := i
		for j < len(at) && at[j].Sub(at[i]) < time.Second {
			j++
		}
		busiest = max(busiest, j-i)
	}
	if busiest > maxRate+5 {
		t.Errorf("capped partner received %d requests within one second; max_rate is %d", busiest, maxRate)
	}
	// The free partner is not held to the capped one's pace: it has every
	// event while the capped one (6 s of tokens) is still far from done.
	if cappedWhenFreeDone < 0 || cappedWhenFreeDone >= n/2 {
		t.Errorf("the capped partner had %d of %d requests when the free one had all %d (-1: never); want the free one done first", cappedWhenFreeDone, n, n)
	}
	// The free partner is not held to the capped one's pace: it has every
	// event while the capped one (6 s of tokens) is still far from done.
	if cappedWhenFreeDone < 0 || cappedWhenFreeDone >= n/2 {
		t.Errorf("the capped partner had %d of %d requests when the free one had all %d (-1: never); want the free one done first", cappedWhenFreeDone, n, n)
	}
	if st := w.Deliveries(); st.DeadLettered.Load() != 0 || st.Deferred.Load() == 0 {
		t.Errorf("%d dead letters (want 0), %d deferrals (want some: 120 at 20/s do not fit in a second)", st.DeadLettered.Load(), st.Deferred.Load())
	}
	t.Logf("capped partner: %d requests, at most %d in one second (max_rate %d); %d deferrals", len(at), busiest, maxRate, w.Deliveries().Deferred.Load())
}

// One slow partner's busy key does not fill its source partition's window:
// the deliveries queued behind its slow request step aside into the retry
// tiers, in order, so the partition reads on and another partner of the
// same events gets them at once. Before, they waited in memory, each
// holding its window slot, and with the window full the partition, and so
// every partner of its events, waited for the slow one.
func TestASlowPartnersBusyKeyDoesNotHoldThePartition(t *testing.T) {
	s := newSuite(t)
	s.cfg.Consumer.MaxInFlight = 16 // a small window: the busy key alone would fill it
	s.cfg.Delivery.Timeout = 10 * time.Second
	const slowFor = 4 // the slow partner's first requests take 3 s (past the 2 s a key's deliveries wait in memory)
	var mu sync.Mutex
	var slowCalls int
	got := map[string][]string{} // receiver → request ids, in arrival order
	slowWhenFreeDone := -1
	const n = 200
	record := func(name string, r testenv.Request) {
		var body struct {
			RequestID string `json:"request_id"`
		}
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		got[name] = append(got[name], body.RequestID)
		if name == "free" && len(got[name]) == n {
			slowWhenFreeDone = len(got["slow"])
		}
	}
	slow, free := testenv.NewReceiver(t), testenv.NewReceiver(t)
	slow.SetRespond(func(r testenv.Request) int {
		mu.Lock()
		slowCalls++
		wait := slowCalls <= slowFor
		mu.Unlock()
		if wait {
			time.Sleep(3 * time.Second)
		}
		mu.Lock()
		defer mu.Unlock()
		record("slow", r)
		return http.StatusOK
	})
	free.SetRespond(func(r testenv.Request) int {
		mu.Lock()
		defer mu.Unlock()
		record("free", r)
		return http.StatusOK
	})
	s.subscribe(subscriptions.Subscription{TenantID: "acme", URL: slow.URL})
	s.subscribe(subscriptions.Subscription{TenantID: "acme", URL: free.URL})
	w := s.start()

	var msgs []kafka.Message
	var want []string
	for i := range n {
		id := fmt.Sprintf("r-%03d", i)
		want = append(want, id)
		msgs = append(msgs, kafka.Message{Topic: s.cfg.Kafka.Topics[0], Key: []byte("player-hot"),
			Value: []byte(payout("acme", "c1", id, "player-hot"))})
	}
	testenv.Produce(t, s.cfg.Kafka.Brokers, msgs...)
	testenv.Eventually(t, 120*time.Second, "every event delivered to both partners", func() bool {
		return w.Deliveries().Succeeded.Load() >= 2*n
	})
	mu.Lock()
	defer mu.Unlock()
	for _, name := range []string{"slow", "free"} {
		if !slices.Equal(got[name], want) {
			t.Errorf("%s partner received %d events, in order %v; want all %d in source order", name, len(got[name]), got[name], n)
		}
	}
	// With the slow partner's key held in memory, the free one would have
	// waited for its four slow requests (12 s) after 16 events, by which
	// time the slow partner had nearly everything too.
	if slowWhenFreeDone < 0 || slowWhenFreeDone >= n/2 {
		t.Errorf("the slow partner had %d of %d events when the free one had all (-1: never); want the free one done first", slowWhenFreeDone, n)
	}
	if st := w.Deliveries(); st.DeadLettered.Load() != 0 || st.Deferred.Load() == 0 {
		t.Errorf("%d dead letters (want 0), %d deferrals (want some: the busy key's deliveries behind the slow one)", st.DeadLettered.Load(), st.Deferred.Load())
	}
	t.Logf("slow partner had %d of %d when the free one had all; %d deferrals", slowWhenFreeDone, n, w.Deliveries().Deferred.Load())
}
