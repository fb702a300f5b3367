package delivery

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/unibo/webhookd/event"
)

// Record is a delivery that left the source partition without succeeding:
// on the retry topic, waiting for its next attempt, or on the dead-letter
// topic, failed for good. It carries everything needed to deliver it again
// (the rendered body and the webhook id; the endpoint and API key are looked
// up afresh from the subscription).
type Record struct {
	WebhookID      string          `json:"webhook_id"`
	SubscriptionID string          `json:"subscription_id"`
	TenantID       string          `json:"tenant_id"`
	EventType      event.Type      `json:"event_type"`
	RequestID      string          `json:"request_id,omitempty"`
	Body           json.RawMessage `json:"body"`
	// Attempts made so far.
	Attempts   int    `json:"attempts"`
	LastStatus int    `json:"last_status,omitempty"`
	LastError  string `json:"last_error,omitempty"`
	// NotBefore is when a retry record's next attempt is due.
	NotBefore time.Time `json:"not_before,omitzero"`
	// Deferrals counts the times the delivery was put off because its
	// endpoint asked for a pause (429, or 503 with Retry-After); they are not
	// attempts. FirstDeferredAt is the first of them.
	Deferrals int `json:"deferrals,omitempty"`
	// Deferred: the record was last written as a deferral (not a retry).
	Deferred        bool      `json:"deferred,omitempty"`
	FirstDeferredAt time.Time `json:"first_deferred_at,omitzero"`
	// ChainPrev, when set, makes the record a member of its (subscription,
	// key)'s chain (package order): the source offset of the member before
	// it, which must be settled before this one goes out.
	ChainPrev *int64 `json:"chain_prev,omitempty"`
	// ChainWaits counts the times it was read back before its prev was
	// settled.
	ChainWaits int `json:"chain_waits,omitempty"`
	// Reason says why a dead letter is dead: not_retried (retries off, or a
	// failure the policy does not retry), retries_exhausted, endpoint_gone,
	// subscription_unavailable, address_blocked (refused by the egress
	// policy).
	Reason       Reason    `json:"reason,omitempty"`
	Source       Source    `json:"source"`
	FirstAttempt time.Time `json:"first_attempt_at"`
	LastAttempt  time.Time `json:"last_attempt_at"`
	DeadAt       time.Time `json:"dead_lettered_at,omitzero"`
}

// Source locates the domain event a record came from.
type Source struct {
	Topic     string `json:"topic"`
	Partition int    `json:"partition"`
	Offset    int64  `json:"offset"`
	Key       string `json:"key,omitempty"`
}

func newRecord(ev event.Event, subID string) Record {
	return Record{
		WebhookID:      ev.WebhookID(subID),
		SubscriptionID: subID,
		TenantID:       ev.TenantID,
		EventType:      ev.Type,
		RequestID:      ev.RequestID,
		Body:           ev.Body,
		Source:         Source{Topic: ev.Source.Topic, Partition: ev.Source.Partition, Offset: ev.Source.Offset, Key: ev.Source.Key},
	}
}

// failedAttempt records the outcome of one more failed attempt.
func (r *Record) failedAttempt(res Result, at time.Time) {
	r.Attempts++
	r.LastStatus = res.Status
	r.LastError = ""
	if res.Err != nil {
		r.LastError = res.Err.Error()
	}
	if r.FirstAttempt.IsZero() {
		r.FirstAttempt = at
	}
	r.LastAttempt = at
}

// DecodeRecord reads a record from a retry or dead-letter message.
func DecodeRecord(b []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return Record{}, fmt.Errorf("decode delivery record: %w", err)
	}
	if r.SubscriptionID == "" || r.WebhookID == "" || len(r.Body) == 0 {
		return Record{}, fmt.Errorf("decode delivery record: subscription_id, webhook_id and body are required")
	}
	return r, nil
}
