package consumer

import (
	"context"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/unibo/webhookd/delivery"
)

// Redeliverer attempts a record read back from Kafka and settles the
// result; it reports whether the record is settled.
type Redeliverer interface {
	Redeliver(ctx context.Context, rec delivery.Record) bool
}

// RetryHandler handles the retry topic: it waits until a record is due,
// then hands it to a Redeliverer. Records that cannot be decoded go to the
// invalid sink. It runs under a consumer of its own, with the same ordering
// and commit discipline as the source topics.
type RetryHandler struct {
	redeliver Redeliverer
	invalid   InvalidSink
}

// NewRetryHandler builds the retry-topic handler.
func NewRetryHandler(r Redeliverer, invalid InvalidSink) *RetryHandler {
	return &RetryHandler{redeliver: r, invalid: invalid}
}

var _ Handler = (*RetryHandler)(nil)

// Handle redelivers one retry record when it is due.
func (h *RetryHandler) Handle(ctx context.Context, m *kafka.Message) error {
	rec, err := delivery.DecodeRecord(m.Value)
	if err != nil {
		if serr := h.invalid.Invalid(ctx, m, err); serr != nil {
			return serr
		}
		return err
	}
	if wait := time.Until(rec.NotBefore); wait > 0 {
		timer := time.NewTimer(wait)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-Stopping(ctx):
			return ErrUnfinished // not due before the partition moves on: its next owner waits
		case <-ctx.Done():
			return ErrUnfinished
		}
	}
	if !h.redeliver.Redeliver(ctx, rec) {
		return ErrUnfinished
	}
	return nil
}
