package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/unibo/webhookd/delivery"
)

type redeliveries struct {
	got     []delivery.Record
	settled bool
}

func (r *redeliveries) Redeliver(_ context.Context, rec delivery.Record) bool {
	r.got = append(r.got, rec)
	return r.settled
}

type invalids struct{ got []error }

func (s *invalids) Invalid(_ context.Context, _ *kafka.Message, reason error) error {
	s.got = append(s.got, reason)
	return nil
}

func retryMessage(t *testing.T, notBefore time.Time) *kafka.Message {
	t.Helper()
	v, err := json.Marshal(delivery.Record{WebhookID: "msg_1", SubscriptionID: "sub_1", EventType: "PLAYER_OPTED_IN",
		Body: json.RawMessage(`{}`), Attempts: 1, NotBefore: notBefore})
	if err != nil {
		t.Fatal(err)
	}
	return &kafka.Message{Topic: "webhookd.retry", Value: v}
}

// A due retry record is handed over as written; a record the redeliverer
// could not settle (shutdown) leaves the message unfinished, so it is not
// committed.
func TestRetryHandlerHandsDueRecordsOver(t *testing.T) {
	for _, settled := range []bool{true, false} {
		r := &redeliveries{settled: settled}
		err := NewRetryHandler(r, &invalids{}).Handle(context.Background(), retryMessage(t, time.Now().Add(-time.Second)))
		if len(r.got) != 1 || r.got[0].WebhookID != "msg_1" || r.got[0].Attempts != 1 {
			t.Fatalf("redelivered %+v", r.got)
		}
		if settled != (err == nil) || (!settled && !errors.Is(err, ErrUnfinished)) {
			t.Errorf("settled %v: Handle returned %v", settled, err)
		}
	}
}

// A record not due when its partition is revoked is left to the next
// owner, unattempted.
func TestRetryHandlerLeavesRecordsNotDueAtRevoke(t *testing.T) {
	r := &redeliveries{settled: true}
	revoked := make(chan struct{})
	close(revoked)
	ctx := context.WithValue(context.Background(), stoppingKey{}, (<-chan struct{})(revoked))
	err := NewRetryHandler(r, &invalids{}).Handle(ctx, retryMessage(t, time.Now().Add(time.Hour)))
	if !errors.Is(err, ErrUnfinished) || len(r.got) != 0 {
		t.Fatalf("Handle = %v after %d redeliveries; want ErrUnfinished and none", err, len(r.got))
	}
}

// A retry-topic message that is not a record goes to the invalid topic
// with the reason, and is never redelivered.
func TestRetryHandlerSetsAsideUndecodableRecords(t *testing.T) {
	r, inv := &redeliveries{settled: true}, &invalids{}
	err := NewRetryHandler(r, inv).Handle(context.Background(), &kafka.Message{Value: []byte(`{"webhook_id":"x"}`)})
	if err == nil || errors.Is(err, ErrUnfinished) || len(inv.got) != 1 || len(r.got) != 0 {
		t.Fatalf("Handle = %v, invalid %v, redelivered %d", err, inv.got, len(r.got))
	}
}
