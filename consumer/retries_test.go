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

func (r *redeliveries) Submit(_ context.Context, rec delivery.Record, done func(bool)) {
	r.got = append(r.got, rec)
	done(r.settled)
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

type hops struct {
	got []delivery.Record
	err error
}

func (h *hops) Retry(_ context.Context, rec delivery.Record) error {
	if h.err != nil {
		return h.err
	}
	h.got = append(h.got, rec)
	return nil
}

// A due retry record is handed over as written; a record the redeliverer
// could not settle (shutdown) leaves the message unfinished, so it is not
// committed.
func TestRetryHandlerHandsDueRecordsOver(t *testing.T) {
	for _, settled := range []bool{true, false} {
		r, hop := &redeliveries{settled: settled}, &hops{}
		err := NewRetryHandler("webhookd.retry", r, hop, &invalids{}).Handle(context.Background(), retryMessage(t, time.Now().Add(-time.Second)))
		if len(r.got) != 1 || r.got[0].WebhookID != "msg_1" || r.got[0].Attempts != 1 || len(hop.got) != 0 {
			t.Fatalf("redelivered %+v, hopped %d", r.got, len(hop.got))
		}
		if settled != (err == nil) || (!settled && !errors.Is(err, ErrUnfinished)) {
			t.Errorf("settled %v: Handle returned %v", settled, err)
		}
	}
}

// A record still early when read (an hour's Retry-After, or one written by
// an older webhookd to the ungated retry topic) is written on to a tier at
// once, never waited for in its lane: it is finished once the write is
// acknowledged, and unfinished when the write fails.
func TestRetryHandlerMovesEarlyRecordsOnWithoutWaiting(t *testing.T) {
	r, hop := &redeliveries{settled: true}, &hops{}
	h := NewRetryHandler("webhookd.retry", r, hop, &invalids{})
	if err := h.Handle(context.Background(), retryMessage(t, time.Now().Add(time.Hour))); err != nil {
		t.Fatalf("Handle = %v", err)
	}
	if len(r.got) != 0 || len(hop.got) != 1 || hop.got[0].WebhookID != "msg_1" || hop.got[0].Attempts != 1 {
		t.Fatalf("redelivered %d, hopped %+v; want the record hopped as it was", len(r.got), hop.got)
	}
	hop.err = context.Canceled
	if err := h.Handle(context.Background(), retryMessage(t, time.Now().Add(time.Hour))); !errors.Is(err, ErrUnfinished) {
		t.Fatalf("Handle with a failed hop = %v, want ErrUnfinished", err)
	}
}

// A tier's records are read at their append time plus the tier's delay;
// the retry topic's at once.
func TestRetryHandlerGatesTiersByTheirDelay(t *testing.T) {
	h := NewRetryHandler("webhookd.retry", &redeliveries{}, &hops{}, &invalids{})
	at := time.Date(2026, 12, 2, 5, 0, 0, 0, time.UTC)
	for topic, want := range map[string]time.Time{
		"webhookd.retry":     {},
		"webhookd.retry.1s":  at.Add(time.Second),
		"webhookd.retry.30s": at.Add(30 * time.Second),
		"webhookd.retry.1h":  at.Add(time.Hour),
	} {
		if got := h.Due(&kafka.Message{Topic: topic, Time: at}); !got.Equal(want) {
			t.Errorf("%s: due %v, want %v", topic, got, want)
		}
	}
}

// A retry-topic message that is not a record goes to the invalid topic
// with the reason, and is never redelivered.
func TestRetryHandlerSetsAsideUndecodableRecords(t *testing.T) {
	r, inv := &redeliveries{settled: true}, &invalids{}
	err := NewRetryHandler("webhookd.retry", r, &hops{}, inv).Handle(context.Background(), &kafka.Message{Value: []byte(`{"webhook_id":"x"}`)})
	if err == nil || errors.Is(err, ErrUnfinished) || len(inv.got) != 1 || len(r.got) != 0 {
		t.Fatalf("Handle = %v, invalid %v, redelivered %d", err, inv.got, len(r.got))
	}
}
