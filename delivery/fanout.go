package delivery

import (
	"context"
	"errors"
	"net/http"
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

// Sink keeps deliveries that leave the source partition undelivered. Both
// methods return once the record is durably written, or ctx ends.
type Sink interface {
	Retry(ctx context.Context, r Record) error
	Dead(ctx context.Context, r Record) error
}

// Recorder counts delivery outcomes (Prometheus in production). Each
// attempt is a success, a failure, or blocked (not attempted: circuit
// open); each failed delivery is then retried or dead_lettered.
type Recorder interface {
	Delivery(eventType, outcome string, status int, d time.Duration, eventTime time.Time)
}

// Disabler turns a subscription off (on a 410 Gone).
type Disabler interface {
	Disable(ctx context.Context, id, reason string) error
}

var (
	_ Matcher = (*subscriptions.Table)(nil)
	_ Poster  = (*Sender)(nil)
	_ Sink    = (*KafkaSink)(nil)
)

// Stats counts delivery outcomes since start.
type Stats struct {
	Succeeded    atomic.Int64 // answered 2xx
	Failed       atomic.Int64 // attempted and failed
	Skipped      atomic.Int64 // not attempted: the endpoint's circuit was open
	Retried      atomic.Int64 // written to the retry topic
	DeadLettered atomic.Int64 // written to the dead-letter topic
	Unmatched    atomic.Int64 // events no subscription matched
}

// Fanout delivers an event to every matching subscription, in parallel, and
// settles each failure: retry topic, or dead-letter topic.
type Fanout struct {
	match    Matcher
	post     Poster
	sink     Sink
	disabler Disabler
	policy   Policy
	rec      Recorder
	log      *zap.Logger
	// skipped logs deliveries not attempted because a circuit is open: one
	// endpoint down can mean thousands a second, so they are sampled (the
	// circuit's own open/close lines are not).
	skipped *zap.Logger
	stats   Stats
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

// NewFanout wires the delivery path.
func NewFanout(m Matcher, p Poster, sink Sink, d Disabler, policy Policy, rec Recorder, log *zap.Logger) *Fanout {
	sampled := log.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return zapcore.NewSamplerWithOptions(c, time.Second, 10, 1000)
	}))
	return &Fanout{match: m, post: p, sink: sink, disabler: d, policy: policy, rec: rec, log: log, skipped: sampled,
		now: time.Now, workers: newWorkers()}
}

// Close stops the fan-out's idle goroutines once no delivery is running.
func (f *Fanout) Close() { f.workers.close() }

// Stats returns the live outcome counters.
func (f *Fanout) Stats() *Stats { return &f.stats }

// Deliver sends ev to each subscription it matches and returns when every
// attempt is over and every failure is settled (retry or dead letter).
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
	rec := newRecord(ev, sub.ID)
	res := f.post.Send(ctx, EndpointOf(sub, rec.WebhookID, f.now()), ev.Body)
	f.settle(ctx, &rec, sub, res, ev)
}

// settle records the outcome of one attempt of rec. A failure goes to the
// retry topic when the policy retries it and attempts remain, else to the
// dead-letter topic; a 410 Gone also disables the subscription.
func (f *Fanout) settle(ctx context.Context, rec *Record, sub *subscriptions.Subscription, res Result, ev event.Event) {
	switch {
	case res.OK():
		f.stats.Succeeded.Add(1)
		f.rec.Delivery(string(rec.EventType), "success", res.Status, res.Duration, ev.Source.Time)
		if ce := f.log.Check(zap.DebugLevel, "webhook delivered"); ce != nil {
			ce.Write(recordFields(rec, res, ev)...)
		}
		return
	case ctx.Err() != nil:
		// Shutdown deadline: the consumer leaves the message uncommitted and
		// its next owner delivers it again.
		f.log.Info("delivery abandoned at shutdown; it will be delivered again", recordFields(rec, res, ev)...)
		return
	}
	now := f.now()
	rec.failedAttempt(res, now)
	skipped := errors.Is(res.Err, ErrCircuitOpen)
	if errors.As(res.Err, new(*BlockedError)) {
		rec.Reason = ReasonBlocked
		f.stats.Failed.Add(1)
		f.rec.Delivery(string(rec.EventType), "blocked", 0, res.Duration, time.Time{})
	} else if skipped {
		f.stats.Skipped.Add(1)
		f.rec.Delivery(string(rec.EventType), "blocked", 0, 0, time.Time{})
	} else {
		f.stats.Failed.Add(1)
		f.rec.Delivery(string(rec.EventType), "failure", res.Status, res.Duration, time.Time{})
	}
	log := f.log
	if skipped {
		log = f.skipped
	}

	retryable := f.policy.Retryable(res)
	maxAttempts := f.policy.MaxAttempts(sub.MaxAttempts)
	if res.Status == http.StatusGone {
		rec.Reason = ReasonGone
		reason := "partner answered 410 Gone"
		if err := f.disabler.Disable(ctx, sub.ID, reason); err != nil {
			f.log.Error("cannot disable subscription after 410 Gone", zap.String("subscription_id", sub.ID), zap.Error(err))
		} else {
			f.log.Warn("subscription disabled: "+reason, zap.String("subscription_id", sub.ID), zap.String("url_origin", origin(sub.URL)))
		}
	}
	if rec.Reason == "" && retryable && rec.Attempts < maxAttempts {
		rec.NotBefore = now.Add(f.policy.Backoff(rec.Attempts+1, res))
		if err := f.sink.Retry(ctx, *rec); err != nil {
			f.log.Info("retry record not written at shutdown; the delivery will be attempted again", append(recordFields(rec, res, ev), zap.Error(err))...)
			return
		}
		f.stats.Retried.Add(1)
		f.rec.Delivery(string(rec.EventType), "retried", res.Status, 0, time.Time{})
		log.Warn("webhook delivery failed; will retry", append(recordFields(rec, res, ev), zap.Time("not_before", rec.NotBefore))...)
		return
	}
	if rec.Reason == "" {
		rec.Reason = ReasonNotRetryable
		if retryable && maxAttempts > 1 {
			rec.Reason = ReasonExhausted
		}
	}
	rec.DeadAt = now
	if err := f.sink.Dead(ctx, *rec); err != nil {
		f.log.Info("dead letter not written at shutdown; the delivery will be attempted again", append(recordFields(rec, res, ev), zap.Error(err))...)
		return
	}
	f.deadLettered(rec)
	log.Warn("webhook delivery failed; not retried", append(recordFields(rec, res, ev), zap.String("dead_letter_reason", rec.Reason))...)
}

// deadLettered counts a dead letter written for rec, in the stats and the
// metrics: every path to the dead-letter topic goes through it.
func (f *Fanout) deadLettered(rec *Record) {
	f.stats.DeadLettered.Add(1)
	f.rec.Delivery(string(rec.EventType), "dead_lettered", rec.LastStatus, 0, time.Time{})
}

func recordFields(rec *Record, res Result, ev event.Event) []zap.Field {
	fields := make([]zap.Field, 0, 16)
	fields = append(fields,
		zap.String("subscription_id", rec.SubscriptionID),
		zap.String("webhook_id", rec.WebhookID),
		zap.String("event_type", string(rec.EventType)),
		zap.String("tenant_id", rec.TenantID),
	)
	if rec.RequestID != "" {
		fields = append(fields, zap.String("request_id", rec.RequestID))
	}
	if ev.CampaignID != "" {
		fields = append(fields, zap.String("campaign_id", ev.CampaignID))
	}
	fields = append(fields,
		zap.String("topic", rec.Source.Topic),
		zap.Int("partition", rec.Source.Partition),
		zap.Int64("offset", rec.Source.Offset),
		zap.String("key", clipKey(rec.Source.Key)),
		zap.Int("attempt", max(rec.Attempts, 1)),
		zap.Int("status", res.Status),
		zap.Duration("duration", res.Duration),
	)
	if res.Err != nil {
		fields = append(fields, zap.Error(res.Err))
	}
	return fields
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

// clipKey bounds a Kafka key in log lines: keys come from producers.
func clipKey(k string) string {
	if len(k) > 128 {
		return k[:128]
	}
	return k
}
