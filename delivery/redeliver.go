package delivery

import (
	"context"
	"time"

	"github.com/unibo/webhookd/order"
	"github.com/unibo/webhookd/subscriptions"
)

// SubscriptionGetter finds a subscription as it is now.
type SubscriptionGetter interface {
	Get(id string) (*subscriptions.Subscription, bool)
}

var _ SubscriptionGetter = (*subscriptions.Table)(nil)

// Redeliverer delivers a record read back from Kafka (a retry) to its
// subscription's current endpoint and API key, with the same webhook id,
// and settles the result like a first attempt's.
type Redeliverer struct {
	subs    SubscriptionGetter
	post    Poster
	settler *Settler
	now     func() time.Time
	workers *workers
	seq     *sequencer
}

// NewRedeliverer builds the redelivery path on the source's poster and
// settler.
func NewRedeliverer(subs SubscriptionGetter, p Poster, s *Settler) *Redeliverer {
	w := newWorkers()
	return &Redeliverer{subs: subs, post: p, settler: s, now: time.Now, workers: w, seq: newSequencer(w)}
}

// Close stops the redeliverer's idle goroutines once none is running.
func (r *Redeliverer) Close() { r.workers.close() }

// Submit redelivers rec without waiting: records of one (subscription,
// key) one at a time, in the order handed over, each at its endpoint's
// pace. done reports, once, whether rec is settled.
func (r *Redeliverer) Submit(ctx context.Context, rec Record, done func(settled bool)) {
	// A record never steps aside (its turn is not offered): a copy of it
	// read back after a crash (same offset, same prev) must wait behind it
	// here, so that its gate finds it settled and drops it. Stepped aside,
	// the copy was gated while the first was in flight and sent again (the
	// SIGKILL fault test saw a pair delivered twice by one process).
	r.seq.run(seqKey{rec.SubscriptionID, rec.Source.Key}, func(*turn) { done(r.Redeliver(ctx, rec)) })
}

// Redeliver attempts rec once and settles the result. A record whose
// subscription was deleted or disabled meanwhile is dead-lettered without
// an attempt. It reports whether the record is settled; it is not when ctx
// ended first.
func (r *Redeliverer) Redeliver(ctx context.Context, rec Record) bool {
	sub, ok := r.subs.Get(rec.SubscriptionID)
	d := Delivery{Record: rec, Sub: sub}
	if !ok || !sub.Enabled {
		return r.settler.Unavailable(ctx, &d)
	}
	r.settler.returned(&d)
	switch g, headDue := r.settler.chains.gate(ctx, &d.Record); g {
	case order.GateDrop:
		return true // settled already: a duplicate of a record delivered or dead-lettered
	case order.GateWait:
		return r.settler.Wait(ctx, &d, headDue)
	}
	res := r.post.Send(ctx, EndpointOf(sub, rec.WebhookID, r.now()), rec.Body)
	return r.settler.Settle(ctx, &d, res)
}
