package delivery

import (
	"context"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/unibo/webhookd/event"
	"github.com/unibo/webhookd/subscriptions"
)

// Matcher finds the subscriptions an event goes to.
type Matcher interface {
	Match(ev event.Event) []*subscriptions.Subscription
}

// Poster sends one payload to one endpoint.
type Poster interface {
	Send(ctx context.Context, ep Endpoint, body []byte) Result
}

var (
	_ Matcher = (*subscriptions.Table)(nil)
	_ Poster  = (*Sender)(nil)
)

// Fanout hands an event's deliveries to its matching subscriptions over to
// the endpoints' schedulers and settles each result: delivered, deferred or
// retried through the retry tiers, or dead-lettered. Deliveries of one
// (subscription, key) go out one at a time and in order; everything else
// goes in parallel, each subscription at its own endpoint's pace.
type Fanout struct {
	match   Matcher
	post    Poster
	settler *Settler
	log     *zap.Logger
	now     func() time.Time
	workers *workers
	seq     *sequencer
	window  windowWatcher // the Poster, when it watches source windows
}

// windowWatcher is told when a source window is full
// (consumer.WindowWatcher).
type windowWatcher interface {
	WindowFull()
}

// NewFanout wires the delivery path: matches from m, requests through p,
// results settled by s.
func NewFanout(m Matcher, p Poster, s *Settler, log *zap.Logger) *Fanout {
	w := newWorkers()
	f := &Fanout{match: m, post: p, settler: s, log: log, now: time.Now, workers: w, seq: newSequencer(w)}
	f.window, _ = p.(windowWatcher)
	return f
}

// WindowFull tells the endpoints a source window is full: what waits for a
// slow one beyond its room keeps events from being read, and no new
// delivery comes to make it leave (consumer.WindowWatcher).
func (f *Fanout) WindowFull() {
	if f.window != nil {
		f.window.WindowFull()
	}
}

// Released tells the fan-out the process no longer reads a source
// partition (consumer.PartitionWatcher).
func (f *Fanout) Released(topic string, partition int) { f.settler.Released(topic, partition) }

// Close stops the fan-out's idle goroutines once no delivery is running.
func (f *Fanout) Close() { f.workers.close() }

// Stats returns the live outcome counters.
func (f *Fanout) Stats() *Stats { return f.settler.Stats() }

// Deliver sends ev to each subscription it matches and returns when every
// delivery is settled.
func (f *Fanout) Deliver(ctx context.Context, ev event.Event) {
	ch := make(chan struct{})
	f.Submit(ctx, ev, func(bool) { close(ch) })
	<-ch
}

// fanoutCall counts one event's deliveries still to settle.
type fanoutCall struct {
	pending   atomic.Int32
	unsettled atomic.Bool
	done      func(settled bool)
}

func (c *fanoutCall) finish(settled bool) {
	if !settled {
		c.unsettled.Store(true)
	}
	if c.pending.Add(-1) == 0 {
		c.done(!c.unsettled.Load())
	}
}

// Submit hands ev's deliveries over and returns without waiting for any.
// done is called once, when every delivery is settled (settled true), or
// when one could not be because ctx ended (false: the message must not be
// committed). ctx must outlive the deliveries.
func (f *Fanout) Submit(ctx context.Context, ev event.Event, done func(settled bool)) {
	subs := f.match.Match(ev)
	if len(subs) == 0 {
		f.settler.stats.Unmatched.Add(1)
		if ce := f.log.Check(zap.DebugLevel, "no subscription matches event"); ce != nil {
			ce.Write(eventFields(ev)...)
		}
		done(true)
		return
	}
	c := &fanoutCall{done: done}
	c.pending.Store(int32(len(subs)))
	for _, sub := range subs {
		f.seq.run(seqKey{sub.ID, ev.Source.Key}, func(t *turn) {
			c.finish(f.deliverOne(ctx, ev, sub, t))
		})
	}
}

// deliverOne delivers ev to sub, in its turn t of the (subscription, key):
// while it waits for its endpoint it may step aside, taking its place at
// the head of its chain, so that the deliveries queued behind it follow it
// through the retry tiers rather than hold their source partition.
func (f *Fanout) deliverOne(ctx context.Context, ev event.Event, sub *subscriptions.Subscription, t *turn) bool {
	d := Delivery{Record: newRecord(ev, sub.ID), Sub: sub, CampaignID: ev.CampaignID, EventTime: ev.Source.Time, fromSource: true}
	if behind, prevDue := f.settler.chains.waiting(ctx, &d); behind {
		return f.settler.Follow(ctx, &d, prevDue)
	}
	t.offer(func() bool { return f.settler.chains.lead(ctx, &d) })
	res := f.post.Send(ctx, EndpointOf(sub, d.WebhookID, f.now()), ev.Body)
	t.withdraw()
	return f.settler.Settle(ctx, &d, res)
}

func eventFields(ev event.Event) []zap.Field {
	fields := make([]zap.Field, 0, 8)
	fields = append(fields,
		zap.String("event_type", string(ev.Type)),
		zap.String("tenant_id", ev.TenantID),
	)
	if ev.RequestID != "" {
		fields = append(fields, zap.String("request_id", ev.RequestID))
	}
	return append(fields,
		zap.String("campaign_id", ev.CampaignID),
		zap.String("topic", ev.Source.Topic),
		zap.Int("partition", ev.Source.Partition),
		zap.Int64("offset", ev.Source.Offset),
	)
}
