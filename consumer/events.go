package consumer

import (
	"context"
	"fmt"

	"github.com/segmentio/kafka-go"

	"github.com/unibo/webhookd/event"
)

// Deliverer hands one decoded event's deliveries to every subscription it
// matches over, and calls done once they are all settled (delivered,
// deferred, retried or dead-lettered: settled true) or one could not be
// because ctx ended (false).
type Deliverer interface {
	Submit(ctx context.Context, ev event.Event, done func(settled bool))
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

var (
	_ AsyncHandler     = (*EventHandler)(nil)
	_ PartitionWatcher = (*EventHandler)(nil)
	_ WindowWatcher    = (*EventHandler)(nil)
)

// WindowFull passes a full window on to the Deliverer, when it watches.
func (h *EventHandler) WindowFull() {
	if w, ok := h.deliver.(WindowWatcher); ok {
		w.WindowFull()
	}
}

// Released passes the end of a partition's reading on to the Deliverer,
// when it keeps state about partitions.
func (h *EventHandler) Released(topic string, partition int) {
	if w, ok := h.deliver.(PartitionWatcher); ok {
		w.Released(topic, partition)
	}
}

// Handle decodes and delivers one message, and returns once its deliveries
// are settled. An invalid message is written to the invalid sink first and
// its decoding error returned.
func (h *EventHandler) Handle(ctx context.Context, m *kafka.Message) error {
	ch := make(chan error, 1)
	h.HandleAsync(ctx, m, func(err error) { ch <- err })
	return <-ch
}

// HandleAsync decodes one message and hands its deliveries over; done is
// called when they are settled, at once for an invalid message (with its
// decoding error, once it is in the invalid sink).
func (h *EventHandler) HandleAsync(ctx context.Context, m *kafka.Message, done func(error)) {
	var ev event.Event
	var err error
	if h.maxBytes > 0 && len(m.Value) > h.maxBytes {
		err = &event.InvalidError{Reason: fmt.Sprintf("message is %d bytes, more than consumer.max_message_bytes (%d)", len(m.Value), h.maxBytes)}
	} else {
		ev, err = event.Decode(m.Value)
	}
	if err != nil {
		if serr := h.invalid.Invalid(ctx, m, err); serr != nil {
			done(serr)
			return
		}
		done(err)
		return
	}
	ev.Source = event.Source{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Key: string(m.Key), Time: m.Time}
	h.deliver.Submit(ctx, ev, func(settled bool) {
		if !settled {
			done(ErrUnfinished)
			return
		}
		done(nil)
	})
}
