package delivery

import (
	"context"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/unibo/webhookd/consumer"
	"github.com/unibo/webhookd/event"
	"github.com/unibo/webhookd/subscriptions"
)

// SubscriptionGetter finds a subscription as it is now.
type SubscriptionGetter interface {
	Get(id string) (*subscriptions.Subscription, bool)
}

var _ SubscriptionGetter = (*subscriptions.Table)(nil)

// Retrier handles the retry topic: it waits until a record is due, then
// delivers it to its subscription's current endpoint and API key, with the
// same webhook id, and settles a failure like a first attempt (retry again
// or dead-letter). It runs under a consumer of its own, with the same
// ordering and commit discipline as the source topics.
type Retrier struct {
	f       *Fanout
	subs    SubscriptionGetter
	invalid consumer.InvalidSink
}

// NewRetrier builds the retry-topic handler on the fan-out's policy, poster
// and sink.
func NewRetrier(f *Fanout, subs SubscriptionGetter, invalid consumer.InvalidSink) *Retrier {
	return &Retrier{f: f, subs: subs, invalid: invalid}
}

var _ consumer.Handler = (*Retrier)(nil)

// Handle redelivers one retry record when it is due.
func (r *Retrier) Handle(ctx context.Context, m *kafka.Message) error {
	rec, err := DecodeRecord(m.Value)
	if err != nil {
		if serr := r.invalid.Invalid(ctx, m, err); serr != nil {
			return serr
		}
		return err
	}
	if wait := time.Until(rec.NotBefore); wait > 0 {
		timer := time.NewTimer(wait)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-consumer.Stopping(ctx):
			return consumer.ErrUnfinished // not due before the partition moves on: its next owner waits
		case <-ctx.Done():
			return consumer.ErrUnfinished
		}
	}
	ev := event.Event{TenantID: rec.TenantID, Type: rec.EventType, RequestID: rec.RequestID,
		Source: event.Source{Topic: rec.Source.Topic, Partition: rec.Source.Partition, Offset: rec.Source.Offset, Key: rec.Source.Key}}
	sub, ok := r.subs.Get(rec.SubscriptionID)
	if !ok || !sub.Enabled {
		rec.Reason, rec.DeadAt = ReasonNoSubscription, time.Now()
		if err := r.f.sink.Dead(ctx, rec); err != nil {
			return consumer.ErrUnfinished
		}
		r.f.deadLettered(&rec)
		r.f.log.Warn("retry dropped to the dead-letter topic: subscription deleted or disabled",
			recordFields(&rec, Result{}, ev)...)
		return nil
	}
	res := r.f.post.Send(ctx, EndpointOf(sub, rec.WebhookID, r.f.now()), rec.Body)
	r.f.settle(ctx, &rec, sub, res, ev)
	return nil
}
