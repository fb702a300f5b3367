package consumer

import (
	"context"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/unibo/webhookd/delivery"
)

// Redeliverer attempts a record read back from Kafka and settles the
// result without waiting for it; done reports, once, whether the record is
// settled.
type Redeliverer interface {
	Submit(ctx context.Context, rec delivery.Record, done func(settled bool))
}

// Hopper writes a record not yet due back to Kafka, to the delay tier of
// what remains of its wait, and returns once the write is acknowledged.
type Hopper interface {
	Retry(ctx context.Context, rec delivery.Record) error
}

// RetryHandler handles the retry topic and its delay tiers
// (delivery.RetryTopics): the consumer reads a tier's record only at its
// gate (Due), then the handler hands a due record to a Redeliverer and
// writes one still early to the tier of what remains. Nothing waits in a
// lane, so a record an hour away never holds one due now. Records that
// cannot be decoded go to the invalid sink. It runs under a consumer of its
// own, with the same ordering and commit discipline as the source topics.
type RetryHandler struct {
	redeliver Redeliverer
	hop       Hopper
	invalid   InvalidSink
	base      string // delivery.retry.topic
	now       func() time.Time
}

// NewRetryHandler builds the handler of the retry topic base and its
// tiers.
func NewRetryHandler(base string, r Redeliverer, hop Hopper, invalid InvalidSink) *RetryHandler {
	return &RetryHandler{redeliver: r, hop: hop, invalid: invalid, base: base, now: time.Now}
}

var (
	_ AsyncHandler = (*RetryHandler)(nil)
	_ Gated        = (*RetryHandler)(nil)
)

// Due is when a message of a delay tier may be read: its append time plus
// the tier's delay. Messages of the retry topic itself are read at once.
func (h *RetryHandler) Due(m *kafka.Message) time.Time {
	d := delivery.TierDelay(h.base, m.Topic)
	if d == 0 {
		return time.Time{}
	}
	return m.Time.Add(d)
}

// Handle redelivers one record that is due, or moves one still early on,
// and returns once that is settled.
func (h *RetryHandler) Handle(ctx context.Context, m *kafka.Message) error {
	ch := make(chan error, 1)
	h.HandleAsync(ctx, m, func(err error) { ch <- err })
	return <-ch
}

// HandleAsync hands a due record to the redeliverer, or moves one still
// early on; done is called once that is settled.
func (h *RetryHandler) HandleAsync(ctx context.Context, m *kafka.Message, done func(error)) {
	rec, err := delivery.DecodeRecord(m.Value)
	if err != nil {
		if serr := h.invalid.Invalid(ctx, m, err); serr != nil {
			done(serr)
			return
		}
		done(err)
		return
	}
	if rec.NotBefore.After(h.now()) {
		if err := h.hop.Retry(ctx, rec); err != nil {
			done(ErrUnfinished) // not moved on: the next owner reads it again
			return
		}
		done(nil)
		return
	}
	h.redeliver.Submit(ctx, rec, func(settled bool) {
		if !settled {
			done(ErrUnfinished)
			return
		}
		done(nil)
	})
}
