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
	r.seq.run(seqKey{rec.SubscriptionID, rec.Source.Key}, func(t *turn) { done(r.redeliver(ctx, rec, t)) })
}

// Redeliver attempts rec once and settles the result. A record whose
// subscription was deleted or disabled meanwhile is dead-lettered without
// an attempt. It reports whether the record is settled; it is not when ctx
// ended first.
func (r *Redeliverer) Redeliver(ctx context.Context, rec Record) bool {
	return r.redeliver(ctx, rec, nil)
}

// redeliver is Redeliver in its turn t of the (subscription, key): a
// record that has its place in its chain steps aside when asked, since what
// follows it in the chain waits for it in the retry tiers anyway.
func (r *Redeliverer) redeliver(ctx context.Context, rec Record, t *turn) bool {
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
	if d.ChainPrev != nil && r.settler.chains != nil {
		t.offer(func() bool { return true })
	}
	res := r.post.Send(ctx, EndpointOf(sub, rec.WebhookID, r.now()), rec.Body)
	t.withdraw()
	return r.settler.Settle(ctx, &d, res)
}
