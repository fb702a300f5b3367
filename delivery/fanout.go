package delivery

import (
	"context"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/unibo/webhookd/event"
	"github.com/unibo/webhookd/subscriptions"
)

// Matcher finds the subscriptions an event goes to.
type Matcher interface {
	Match(ev event.Event, dst []subscriptions.Subscription) []subscriptions.Subscription
}

// Poster sends one payload to one endpoint.
type Poster interface {
	Send(ctx context.Context, ep Endpoint, body []byte) Result
}

var (
	_ Matcher = (*subscriptions.Table)(nil)
	_ Poster  = (*Sender)(nil)
)

// Stats counts delivery outcomes since start.
type Stats struct {
	Succeeded atomic.Int64
	Failed    atomic.Int64
	Unmatched atomic.Int64
}

// Fanout delivers an event to every matching subscription, in parallel.
type Fanout struct {
	match Matcher
	post  Poster
	log   *zap.Logger
	stats Stats
}

// NewFanout wires a Matcher and a Poster.
func NewFanout(m Matcher, p Poster, log *zap.Logger) *Fanout {
	return &Fanout{match: m, post: p, log: log}
}

// Stats returns the live outcome counters.
func (f *Fanout) Stats() *Stats { return &f.stats }

// Deliver sends ev to each subscription it matches and returns when every
// attempt is over. Failures are outcomes, logged and not retried (the guide:
// "we'll log the failure but won't retry").
func (f *Fanout) Deliver(ctx context.Context, ev event.Event) {
	subs := f.match.Match(ev, nil)
	switch len(subs) {
	case 0:
		f.stats.Unmatched.Add(1)
		f.log.Debug("no subscription matches event", eventFields(ev)...)
		return
	case 1:
		f.deliverOne(ctx, ev, subs[0])
		return
	}
	var wg sync.WaitGroup
	for i := range subs {
		wg.Add(1)
		go func(sub subscriptions.Subscription) {
			defer wg.Done()
			f.deliverOne(ctx, ev, sub)
		}(subs[i])
	}
	wg.Wait()
}

func (f *Fanout) deliverOne(ctx context.Context, ev event.Event, sub subscriptions.Subscription) {
	res := f.post.Send(ctx, Endpoint{SubscriptionID: sub.ID, URL: sub.URL, APIKey: sub.APIKey}, ev.Body)
	fields := append(eventFields(ev),
		zap.String("subscription_id", sub.ID),
		zap.Int("status", res.Status),
		zap.Duration("duration", res.Duration),
	)
	if res.OK() {
		f.stats.Succeeded.Add(1)
		f.log.Debug("webhook delivered", fields...)
		return
	}
	f.stats.Failed.Add(1)
	f.log.Warn("webhook delivery failed; not retried", append(fields, zap.Error(res.Err))...)
}

func eventFields(ev event.Event) []zap.Field {
	fields := make([]zap.Field, 0, 12)
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
