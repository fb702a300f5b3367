package consumer

import (
	"context"
	"fmt"

	"github.com/segmentio/kafka-go"

	"github.com/unibo/webhookd/event"
)

// Deliverer delivers one decoded event to every subscription it matches and
// returns when every attempt is over (or its failure recorded).
type Deliverer interface {
	Deliver(ctx context.Context, ev event.Event)
}

// InvalidSink keeps a message that is not a valid domain event, with the
// reason, so that nothing read is lost. It returns once the message is
// durably kept, or ctx ends.
type InvalidSink interface {
	Invalid(ctx context.Context, m *kafka.Message, reason error) error
}

// EventHandler decodes domain events and hands them to a Deliverer; invalid
// ones go to an InvalidSink.
type EventHandler struct {
	deliver  Deliverer
	invalid  InvalidSink
	maxBytes int
}

// NewEventHandler builds the domain-event handler. Messages longer than
// maxBytes (0: no limit) are invalid, whatever they contain.
func NewEventHandler(d Deliverer, invalid InvalidSink, maxBytes int) *EventHandler {
	return &EventHandler{deliver: d, invalid: invalid, maxBytes: maxBytes}
}

var _ Handler = (*EventHandler)(nil)

// Handle decodes and delivers one message. An invalid message is written to
// the invalid sink first and its decoding error returned.
func (h *EventHandler) Handle(ctx context.Context, m *kafka.Message) error {
	var ev event.Event
	var err error
	if h.maxBytes > 0 && len(m.Value) > h.maxBytes {
		err = &event.InvalidError{Reason: fmt.Sprintf("message is %d bytes, more than consumer.max_message_bytes (%d)", len(m.Value), h.maxBytes)}
	} else {
		ev, err = event.Decode(m.Value)
	}
	if err != nil {
		if serr := h.invalid.Invalid(ctx, m, err); serr != nil {
			return serr
		}
		return err
	}
	ev.Source = event.Source{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Key: string(m.Key), Time: m.Time}
	h.deliver.Deliver(ctx, ev)
	return nil
}
