package delivery

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/unibo/webhookd/config"
	"github.com/unibo/webhookd/order"
	"github.com/unibo/webhookd/subscriptions"
)

// recordingSink keeps what it is given; err, when set, fails every write.
type recordingSink struct {
	mu          sync.Mutex
	retry, dead []Record
	err         error
}

func (s *recordingSink) Retry(_ context.Context, r Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.retry = append(s.retry, r)
	return nil
}

func (s *recordingSink) Dead(_ context.Context, r Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.dead = append(s.dead, r)
	return nil
}

// outcomeRecorder lists the outcomes it is told, in order.
type outcomeRecorder struct {
	mu  sync.Mutex
	got []Outcome
}

func (r *outcomeRecorder) Delivery(_ string, o Outcome, _ int, _ time.Duration, _ time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, o)
}

type recordingDisabler struct{ ids []string }

func (d *recordingDisabler) Disable(_ context.Context, id, _ string) error {
	d.ids = append(d.ids, id)
	return nil
}

func status(code int) Result { return Result{Status: code, Err: &StatusError{Status: code}} }

func throttled(code int, retryAfter time.Duration) Result {
	return Result{Status: code, Err: &StatusError{Status: code}, RetryAfter: retryAfter}
}

// Every way an attempt can end, under the default policy (no retries) and
// with retries on: what is written where, what is counted, and whether the
// delivery is settled (its offset may be committed).
func TestSettlerSettlesEachOutcome(t *testing.T) {
	noRetries := NewPolicy(config.Defaults().Delivery)
	retries := func() Policy {
		d := config.Defaults().Delivery
		d.Retry.MaxAttempts = 3
		return NewPolicy(d)
	}()
	strict := func() Policy {
		d := config.Defaults().Delivery
		d.Backpressure = config.BackpressureStrict
		return NewPolicy(d)
	}()
	stopped, stop := context.WithCancel(context.Background())
	stop()
	cases := []struct {
		name     string
		policy   Policy
		ctx      context.Context
		attempts int // made before this one
		res      Result
		sinkErr  error

		settled       bool
		retry         int
		dead          Reason // "" when no dead letter
		disabled      bool
		outcomes      []Outcome
		stat          func(*Stats) int64 // the counter that must read 1
		statName      string
		notBefore     bool
		lastStatus    int
		sameAttempts  bool      // a deferral: attempts unchanged
		firstDeferred time.Time // the delivery was first deferred then
	}{
		{name: "2xx", policy: noRetries, res: Result{Status: 204}, settled: true,
			outcomes: []Outcome{Succeeded}, stat: func(s *Stats) int64 { return s.Succeeded.Load() }, statName: "succeeded"},
		{name: "500, retries off", policy: noRetries, res: status(500), settled: true, dead: ReasonNotRetryable, lastStatus: 500,
			outcomes: []Outcome{Failed, DeadLettered}, stat: func(s *Stats) int64 { return s.DeadLettered.Load() }, statName: "dead-lettered"},
		{name: "500, retries on", policy: retries, res: status(500), settled: true, retry: 1, notBefore: true, lastStatus: 500,
			outcomes: []Outcome{Failed, Retried}, stat: func(s *Stats) int64 { return s.Retried.Load() }, statName: "retried"},
		{name: "500, last attempt", policy: retries, attempts: 2, res: status(500), settled: true, dead: ReasonExhausted, lastStatus: 500,
			outcomes: []Outcome{Failed, DeadLettered}, stat: func(s *Stats) int64 { return s.Failed.Load() }, statName: "failed"},
		{name: "400 is not retried", policy: retries, res: status(400), settled: true, dead: ReasonNotRetryable, lastStatus: 400,
			outcomes: []Outcome{Failed, DeadLettered}, stat: func(s *Stats) int64 { return s.DeadLettered.Load() }, statName: "dead-lettered"},
		{name: "410 disables", policy: retries, res: status(410), settled: true, dead: ReasonGone, disabled: true, lastStatus: 410,
			outcomes: []Outcome{Failed, DeadLettered}, stat: func(s *Stats) int64 { return s.DeadLettered.Load() }, statName: "dead-lettered"},
		{name: "egress refused", policy: retries, res: Result{Err: &BlockedError{Err: errors.New("loopback")}}, settled: true, dead: ReasonBlocked,
			outcomes: []Outcome{Blocked, DeadLettered}, stat: func(s *Stats) int64 { return s.Failed.Load() }, statName: "failed"},
		{name: "circuit open, retries on", policy: retries, res: Result{Err: ErrCircuitOpen}, settled: true, retry: 1, notBefore: true,
			outcomes: []Outcome{Blocked, Retried}, stat: func(s *Stats) int64 { return s.Skipped.Load() }, statName: "skipped"},
		{name: "retry write fails at shutdown", policy: retries, res: status(503), sinkErr: context.Canceled, settled: false,
			outcomes: []Outcome{Failed}, stat: func(s *Stats) int64 { return s.Failed.Load() }, statName: "failed"},
		{name: "dead letter write fails at shutdown", policy: noRetries, res: status(500), sinkErr: context.Canceled, settled: false,
			outcomes: []Outcome{Failed}, stat: func(s *Stats) int64 { return s.Failed.Load() }, statName: "failed"},
		{name: "shutdown mid-request", policy: retries, ctx: stopped, res: Result{Err: ErrTimeout}, settled: false},
		{name: "429, retries off: deferred, not an attempt", policy: noRetries, res: throttled(429, 0), settled: true, retry: 1, notBefore: true, lastStatus: 429, sameAttempts: true,
			outcomes: []Outcome{Throttled, Deferred}, stat: func(s *Stats) int64 { return s.Deferred.Load() }, statName: "deferred"},
		{name: "503 with Retry-After: deferred", policy: noRetries, res: throttled(503, time.Minute), settled: true, retry: 1, notBefore: true, lastStatus: 503, sameAttempts: true,
			outcomes: []Outcome{Throttled, Deferred}, stat: func(s *Stats) int64 { return s.Throttled.Load() }, statName: "throttled"},
		{name: "503 without Retry-After is a failure", policy: noRetries, res: status(503), settled: true, dead: ReasonNotRetryable, lastStatus: 503,
			outcomes: []Outcome{Failed, DeadLettered}, stat: func(s *Stats) int64 { return s.Failed.Load() }, statName: "failed"},
		{name: "endpoint paused: deferred without an attempt", policy: noRetries, res: Result{Err: &PausedError{Until: time.Now().Add(time.Minute)}}, settled: true, retry: 1, notBefore: true, sameAttempts: true,
			outcomes: []Outcome{Deferred}, stat: func(s *Stats) int64 { return s.Deferred.Load() }, statName: "deferred"},
		{name: "429 under strict backpressure is a failed attempt", policy: strict, res: throttled(429, time.Second), settled: true, dead: ReasonNotRetryable, lastStatus: 429,
			outcomes: []Outcome{Failed, DeadLettered}, stat: func(s *Stats) int64 { return s.DeadLettered.Load() }, statName: "dead-lettered"},
		{name: "deferred for a day: dead-lettered", policy: noRetries, firstDeferred: time.Now().Add(-25 * time.Hour), res: throttled(429, 0), settled: true, dead: ReasonExhausted, lastStatus: 429,
			outcomes: []Outcome{Throttled, DeadLettered}, stat: func(s *Stats) int64 { return s.DeadLettered.Load() }, statName: "dead-lettered"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sink, rec, dis := &recordingSink{err: tc.sinkErr}, &outcomeRecorder{}, &recordingDisabler{}
			s := NewSettler(sink, dis, tc.policy, rec, zap.NewNop())
			ctx := tc.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			sub := &subscriptions.Subscription{ID: "sub_1", TenantID: "t1", URL: "https://partner.example/hook", Enabled: true}
			d := Delivery{Record: Record{WebhookID: "msg_1", SubscriptionID: sub.ID, TenantID: "t1", EventType: "PLAYER_OPTED_IN",
				Body: []byte(`{}`), Attempts: tc.attempts, FirstDeferredAt: tc.firstDeferred}, Sub: sub}

			if got := s.Settle(ctx, &d, tc.res); got != tc.settled {
				t.Errorf("settled %v, want %v", got, tc.settled)
			}
			if len(sink.retry) != tc.retry {
				t.Errorf("%d retry records, want %d", len(sink.retry), tc.retry)
			}
			for _, r := range sink.retry {
				attempts := tc.attempts + 1
				if tc.sameAttempts {
					attempts = tc.attempts
					if r.Deferrals != 1 || r.FirstDeferredAt.IsZero() {
						t.Errorf("deferral record deferrals %d first_deferred_at %v, want 1 and set", r.Deferrals, r.FirstDeferredAt)
					}
				}
				if r.Attempts != attempts || r.NotBefore.IsZero() != !tc.notBefore || r.LastStatus != tc.lastStatus || r.WebhookID != "msg_1" {
					t.Errorf("retry record attempts %d not_before %v last_status %d webhook_id %s; want attempts %d", r.Attempts, r.NotBefore, r.LastStatus, r.WebhookID, attempts)
				}
			}
			switch {
			case tc.dead == "" && len(sink.dead) > 0:
				t.Errorf("dead letter %+v, want none", sink.dead[0])
			case tc.dead != "" && len(sink.dead) != 1:
				t.Errorf("%d dead letters, want 1 (%s)", len(sink.dead), tc.dead)
			case tc.dead != "":
				if r := sink.dead[0]; r.Reason != tc.dead || r.DeadAt.IsZero() || r.LastStatus != tc.lastStatus || r.WebhookID != "msg_1" {
					t.Errorf("dead letter reason %q dead_at %v last_status %d webhook_id %s, want %q", r.Reason, r.DeadAt, r.LastStatus, r.WebhookID, tc.dead)
				}
			}
			if tc.disabled != (len(dis.ids) == 1) {
				t.Errorf("disabled %v, want %v", dis.ids, tc.disabled)
			}
			if !slices.Equal(rec.got, tc.outcomes) {
				t.Errorf("metrics told %v, want %v", rec.got, tc.outcomes)
			}
			if tc.stat != nil && tc.stat(s.Stats()) != 1 {
				t.Errorf("stats: %s = %d, want 1 (%+v)", tc.statName, tc.stat(s.Stats()), statsOf(s.Stats()))
			}
		})
	}
}

func statsOf(s *Stats) string {
	return fmt.Sprintf("succeeded %d failed %d skipped %d retried %d dead %d",
		s.Succeeded.Load(), s.Failed.Load(), s.Skipped.Load(), s.Retried.Load(), s.DeadLettered.Load())
}

type subsByID map[string]*subscriptions.Subscription

func (m subsByID) Get(id string) (*subscriptions.Subscription, bool) {
	s, ok := m[id]
	return s, ok
}

// A retry whose subscription was deleted or disabled meanwhile is
// dead-lettered without an attempt, and counted as dead_lettered in the
// metrics like any other dead letter, not only in the worker's own stats.
func TestRedeliverDeadLettersRetriesOfGoneSubscriptions(t *testing.T) {
	disabled := &subscriptions.Subscription{ID: "sub_disabled", TenantID: "t1", URL: "http://a.example/hook"}
	sink, rec := &recordingSink{}, &outcomeRecorder{}
	post := &countingPoster{got: map[string]int{}}
	s := NewSettler(sink, nil, NewPolicy(config.Defaults().Delivery), rec, zap.NewNop())
	r := NewRedeliverer(subsByID{disabled.ID: disabled}, post, s)

	for _, id := range []string{"sub_deleted", disabled.ID} {
		rec := Record{WebhookID: "wh_" + id, SubscriptionID: id, TenantID: "t1", EventType: "PLAYER_OPTED_IN", Body: []byte(`{}`), Attempts: 1}
		if !r.Redeliver(context.Background(), rec) {
			t.Fatalf("%s: not settled", id)
		}
	}
	if len(post.got) != 0 {
		t.Errorf("%d requests sent, want none", len(post.got))
	}
	if len(sink.dead) != 2 || len(sink.retry) != 0 {
		t.Fatalf("dead letters %d, retries %d; want 2 dead letters", len(sink.dead), len(sink.retry))
	}
	for _, d := range sink.dead {
		if d.Reason != ReasonNoSubscription || d.Attempts != 1 {
			t.Errorf("%s dead-lettered for %q after %d attempts, want %q after 1", d.SubscriptionID, d.Reason, d.Attempts, ReasonNoSubscription)
		}
	}
	if got := s.Stats().DeadLettered.Load(); got != 2 {
		t.Errorf("stats count %d dead letters, want 2", got)
	}
	if want := []Outcome{DeadLettered, DeadLettered}; !slices.Equal(rec.got, want) {
		t.Errorf("metrics told %v, want %v", rec.got, want)
	}
}

// A retry is sent to the subscription as it is now (its current URL), with
// the webhook id it had, and its failure counts as one more attempt.
func TestRedeliverSendsToTheCurrentEndpointWithTheSameWebhookID(t *testing.T) {
	sub := &subscriptions.Subscription{ID: "sub_1", TenantID: "t1", URL: "https://moved.example/hook", Enabled: true}
	sink := &recordingSink{}
	var sent Endpoint
	post := posterFunc(func(ep Endpoint) Result { sent = ep; return status(502) })
	d := config.Defaults().Delivery
	d.Retry.MaxAttempts = 5
	r := NewRedeliverer(subsByID{sub.ID: sub}, post, NewSettler(sink, nil, NewPolicy(d), nopRecorder{}, zap.NewNop()))
	if !r.Redeliver(context.Background(), Record{WebhookID: "msg_x", SubscriptionID: sub.ID, EventType: "PLAYER_OPTED_IN", Body: []byte(`{}`), Attempts: 2}) {
		t.Fatal("not settled")
	}
	if sent.URL != sub.URL || sent.WebhookID != "msg_x" {
		t.Errorf("sent to %s with webhook id %s", sent.URL, sent.WebhookID)
	}
	if len(sink.retry) != 1 || sink.retry[0].Attempts != 3 || sink.retry[0].WebhookID != "msg_x" {
		t.Fatalf("retry records %+v, want one with attempts 3", sink.retry)
	}
}

type posterFunc func(Endpoint) Result

func (f posterFunc) Send(_ context.Context, ep Endpoint, _ []byte) Result { return f(ep) }

// A delivery behind its chain's head, read back while the head still
// waits, goes back to the tiers until just after the head is due, not for
// a second at a time: a partner paused for ten minutes costs each of its
// waiting deliveries one write, not six hundred.
func TestFollowerWaitsUntilItsHeadIsDue(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	sub := &subscriptions.Subscription{ID: "sub_1", TenantID: "t1", URL: "https://paused.example/hook", Enabled: true}
	sink := &recordingSink{}
	s := NewSettler(sink, nil, NewPolicy(config.Defaults().Delivery), nopRecorder{}, zap.NewNop())
	s.now = func() time.Time { return t0 }
	s.KeepOrder(order.NewMemory())
	src := func(offset int64) Record {
		return Record{WebhookID: fmt.Sprint("msg_", offset), SubscriptionID: sub.ID, TenantID: "t1", EventType: "PLAYER_OPTED_IN",
			Body: []byte(`{}`), Source: Source{Topic: "events", Partition: 3, Offset: offset, Key: "player-1"}}
	}
	ctx := context.Background()

	// The head: sent, and the partner is paused for ten minutes.
	pausedUntil := t0.Add(10 * time.Minute)
	head := Delivery{Record: src(10), Sub: sub, fromSource: true}
	if !s.Settle(ctx, &head, Result{Err: &PausedError{Until: pausedUntil}}) {
		t.Fatal("head not settled")
	}
	// The next event of the key follows it without being sent.
	next := Delivery{Record: src(11), Sub: sub, fromSource: true}
	if wait, due := s.chains.waiting(ctx, &next); !wait || !due.Equal(pausedUntil) {
		t.Fatalf("follower: waiting %v behind a head due %s, want true and %s", wait, due, pausedUntil)
	}
	if !s.Follow(ctx, &next, pausedUntil) {
		t.Fatal("follower not settled")
	}
	if len(sink.retry) != 2 {
		t.Fatalf("%d records written, want the head's and the follower's", len(sink.retry))
	}
	follower := sink.retry[1]
	if follower.ChainPrev == nil || *follower.ChainPrev != 10 {
		t.Fatalf("follower's prev = %v, want the head's offset 10", follower.ChainPrev)
	}

	// Read back early (a tier rounds down, or a record is re-read after a
	// rebalance): the head is still waiting.
	sent := 0
	r := NewRedeliverer(subsByID{sub.ID: sub}, posterFunc(func(Endpoint) Result { sent++; return Result{} }), s)
	r.now = s.now
	if !r.Redeliver(ctx, follower) {
		t.Fatal("follower read back early: not settled")
	}
	if sent != 0 {
		t.Fatalf("follower sent %d times before its head", sent)
	}
	again := sink.retry[2]
	if want := pausedUntil.Add(followGap); !again.NotBefore.Equal(want) {
		t.Errorf("follower written back to come at %s, want just after its head is due: %s", again.NotBefore, want)
	}

	// A chain whose head's booking is unknown (written by an older build)
	// is asked again in a second.
	if !s.Wait(ctx, &Delivery{Record: again, Sub: sub}, time.Time{}) {
		t.Fatal("not settled")
	}
	if got := sink.retry[3].NotBefore; !got.Equal(t0.Add(time.Second)) {
		t.Errorf("with no booking known, written back to come at %s, want %s", got, t0.Add(time.Second))
	}
}
