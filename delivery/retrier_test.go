package delivery

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/unibo/webhookd/config"
	"github.com/unibo/webhookd/subscriptions"
)

type recordingSink struct {
	mu          sync.Mutex
	retry, dead []Record
}

func (s *recordingSink) Retry(_ context.Context, r Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.retry = append(s.retry, r)
	return nil
}

func (s *recordingSink) Dead(_ context.Context, r Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dead = append(s.dead, r)
	return nil
}

type outcomeRecorder struct {
	mu       sync.Mutex
	outcomes map[string]int
}

func (r *outcomeRecorder) Delivery(_, outcome string, _ int, _ time.Duration, _ time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.outcomes[outcome]++
}

type subsByID map[string]*subscriptions.Subscription

func (m subsByID) Get(id string) (*subscriptions.Subscription, bool) {
	s, ok := m[id]
	return s, ok
}

// A retry whose subscription was deleted or disabled meanwhile is
// dead-lettered, and counted as dead_lettered in the metrics like any other
// dead letter, not only in the worker's own stats.
func TestRetrierDeadLettersRetriesOfGoneSubscriptions(t *testing.T) {
	disabled := &subscriptions.Subscription{ID: "sub_disabled", TenantID: "t1", URL: "http://a.example/hook"}
	sink := &recordingSink{}
	rec := &outcomeRecorder{outcomes: map[string]int{}}
	f := NewFanout(fixedMatch{}, okPoster{}, sink, nil, NewPolicy(config.Defaults().Delivery), rec, zap.NewNop())
	defer f.Close()
	r := NewRetrier(f, subsByID{disabled.ID: disabled}, nil)

	for _, id := range []string{"sub_deleted", disabled.ID} {
		value, err := json.Marshal(Record{WebhookID: "wh_" + id, SubscriptionID: id, TenantID: "t1", EventType: "PLAYER_OPTED_IN", Body: json.RawMessage(`{}`), Attempts: 1})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Handle(context.Background(), &kafka.Message{Value: value}); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
	}
	if len(sink.dead) != 2 || len(sink.retry) != 0 {
		t.Fatalf("dead letters %d, retries %d; want 2 dead letters", len(sink.dead), len(sink.retry))
	}
	for _, d := range sink.dead {
		if d.Reason != ReasonNoSubscription {
			t.Errorf("%s dead-lettered for %q, want %q", d.SubscriptionID, d.Reason, ReasonNoSubscription)
		}
	}
	if got := f.Stats().DeadLettered.Load(); got != 2 {
		t.Errorf("stats count %d dead letters, want 2", got)
	}
	if got := rec.outcomes["dead_lettered"]; got != 2 {
		t.Errorf("metrics count %d dead_lettered deliveries, want 2 (outcomes %v)", got, rec.outcomes)
	}
}
