package delivery

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

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

// Stats counts delivery outcomes since start.
type Stats struct {
	Succeeded atomic.Int64
	Failed    atomic.Int64 // attempted and failed
	Skipped   atomic.Int64 // not attempted: the endpoint's circuit was open
	Unmatched atomic.Int64 // events no subscription matched
}

// Fanout delivers an event to every matching subscription, in parallel.
type Fanout struct {
	match Matcher
	post  Poster
	log   *zap.Logger
	// skipped logs deliveries not attempted because a circuit is open: one
	// endpoint down can mean thousands a second, so they are sampled (the
	// circuit's own open/close lines are not).
	skipped *zap.Logger
	stats   Stats
}

// NewFanout wires a Matcher and a Poster.
func NewFanout(m Matcher, p Poster, log *zap.Logger) *Fanout {
	sampled := log.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return zapcore.NewSamplerWithOptions(c, time.Second, 10, 1000)
	}))
	return &Fanout{match: m, post: p, log: log, skipped: sampled}
}

// Stats returns the live outcome counters.
func (f *Fanout) Stats() *Stats { return &f.stats }

// Deliver sends ev to each subscription it matches and returns when every
// attempt is over. Failures are outcomes, logged and not retried (the guide:
// "we'll log the failure but won't retry").
func (f *Fanout) Deliver(ctx context.Context, ev event.Event) {
	subs := f.match.Match(ev)
	switch len(subs) {
	case 0:
		f.stats.Unmatched.Add(1)
		if ce := f.log.Check(zap.DebugLevel, "no subscription matches event"); ce != nil {
			ce.Write(eventFields(ev)...)
		}
		return
	case 1:
		f.deliverOne(ctx, ev, subs[0])
		return
	}
	var wg sync.WaitGroup
	for i := 1; i < len(subs); i++ {
		wg.Add(1)
		go func(sub *subscriptions.Subscription) {
			defer wg.Done()
			f.deliverOne(ctx, ev, sub)
		}(subs[i])
	}
	f.deliverOne(ctx, ev, subs[0])
	wg.Wait()
}

func (f *Fanout) deliverOne(ctx context.Context, ev event.Event, sub *subscriptions.Subscription) {
	res := f.post.Send(ctx, Endpoint{SubscriptionID: sub.ID, URL: sub.URL, APIKey: sub.APIKey}, ev.Body)
	switch {
	case res.OK():
		f.stats.Succeeded.Add(1)
		if ce := f.log.Check(zap.DebugLevel, "webhook delivered"); ce != nil {
			ce.Write(outcomeFields(ev, sub, res)...)
		}
	case ctx.Err() != nil:
		// Shutdown deadline: the consumer leaves the message uncommitted and
		// its next owner delivers it again.
		f.log.Info("delivery abandoned at shutdown; it will be delivered again", outcomeFields(ev, sub, res)...)
	case errors.Is(res.Err, ErrCircuitOpen):
		f.stats.Skipped.Add(1)
		f.skipped.Warn("webhook delivery failed: endpoint circuit open; not retried", outcomeFields(ev, sub, res)...)
	default:
		f.stats.Failed.Add(1)
		f.log.Warn("webhook delivery failed; not retried", outcomeFields(ev, sub, res)...)
	}
}

func outcomeFields(ev event.Event, sub *subscriptions.Subscription, res Result) []zap.Field {
	fields := append(eventFields(ev),
		zap.String("subscription_id", sub.ID),
		zap.Int("status", res.Status),
		zap.Duration("duration", res.Duration),
	)
	if res.Err != nil {
		fields = append(fields, zap.Error(res.Err))
	}
	return fields
}

func eventFields(ev event.Event) []zap.Field {
	fields := make([]zap.Field, 0, 14)
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
