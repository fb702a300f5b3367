package delivery

import (
	"context"
	"sync"
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

// Fanout delivers an event to every matching subscription, in parallel, and
// settles each failure: retry topic, or dead-letter topic.
type Fanout struct {
	match   Matcher
	post    Poster
	settler *Settler
	log     *zap.Logger
	now     func() time.Time
	workers *workers
	calls   sync.Pool // of *fanoutCall
}

// fanoutCall is one event's deliveries to its subscriptions after the
// first, run on the fan-out's workers while the caller delivers to the
// first. It is reused from call to call (a fresh closure, WaitGroup and
// copy of the event cost 3 allocations per event), so it is only valid
// until Deliver returns; its context is Deliver's, held for no longer.
type fanoutCall struct {
	f    *Fanout
	ctx  context.Context
	ev   event.Event
	subs []*subscriptions.Subscription
	next atomic.Int32 // index of the next subscription to deliver to
	wg   sync.WaitGroup
	run  func() // c.deliverNext, bound once
}

func (c *fanoutCall) deliverNext() {
	defer c.wg.Done()
	c.f.deliverOne(c.ctx, c.ev, c.subs[c.next.Add(1)])
}

// NewFanout wires the delivery path: matches from m, requests through p,
// results settled by s.
func NewFanout(m Matcher, p Poster, s *Settler, log *zap.Logger) *Fanout {
	return &Fanout{match: m, post: p, settler: s, log: log, now: time.Now, workers: newWorkers()}
}

// Close stops the fan-out's idle goroutines once no delivery is running.
func (f *Fanout) Close() { f.workers.close() }

// Stats returns the live outcome counters.
func (f *Fanout) Stats() *Stats { return f.settler.Stats() }

// Deliver sends ev to each subscription it matches and returns when every
// attempt is over and every failure is settled (retry or dead letter).
func (f *Fanout) Deliver(ctx context.Context, ev event.Event) {
	subs := f.match.Match(ev)
	switch len(subs) {
	case 0:
		f.settler.stats.Unmatched.Add(1)
		if ce := f.log.Check(zap.DebugLevel, "no subscription matches event"); ce != nil {
			ce.Write(eventFields(ev)...)
		}
		return
	case 1:
		f.deliverOne(ctx, ev, subs[0])
		return
	}
	c, _ := f.calls.Get().(*fanoutCall)
	if c == nil {
		c = &fanoutCall{f: f}
		c.run = c.deliverNext
	}
	c.ctx, c.ev, c.subs = ctx, ev, subs
	c.next.Store(0)
	c.wg.Add(len(subs) - 1)
	for range subs[1:] {
		f.workers.run(c.run)
	}
	f.deliverOne(ctx, ev, subs[0])
	c.wg.Wait()
	c.ctx, c.ev, c.subs = nil, event.Event{}, nil
	f.calls.Put(c)
}

func (f *Fanout) deliverOne(ctx context.Context, ev event.Event, sub *subscriptions.Subscription) {
	d := Delivery{Record: newRecord(ev, sub.ID), Sub: sub, CampaignID: ev.CampaignID, EventTime: ev.Source.Time}
	res := f.post.Send(ctx, EndpointOf(sub, d.WebhookID, f.now()), ev.Body)
	f.settler.Settle(ctx, &d, res)
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
