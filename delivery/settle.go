package delivery

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/unibo/webhookd/order"
	"github.com/unibo/webhookd/subscriptions"
)

// Sink keeps deliveries that leave the source partition undelivered. Both
// methods return once the record is durably written, or ctx ends.
type Sink interface {
	Retry(ctx context.Context, r Record) error
	Dead(ctx context.Context, r Record) error
}

// Recorder counts delivery outcomes (Prometheus in production): each
// attempt is Succeeded, Failed or Blocked; each failed delivery is then
// Retried or DeadLettered. status is the partner's HTTP status (0: none),
// d the attempt's duration, eventTime the source message's timestamp (zero
// when unknown).
type Recorder interface {
	Delivery(eventType string, o Outcome, status int, d time.Duration, eventTime time.Time)
}

// DeferralCounter counts, per endpoint, the deliveries deferred through the
// retry tiers and those read back (the Sender, for EndpointStatus).
type DeferralCounter interface {
	Deferred(rawURL string)
	Returned(rawURL string, waited time.Duration)
}

// Disabler turns a subscription off (on a 410 Gone).
type Disabler interface {
	Disable(ctx context.Context, id, reason string) error
}

var _ Sink = (*KafkaSink)(nil)

// Stats counts delivery outcomes since start.
type Stats struct {
	Succeeded    atomic.Int64 // answered 2xx
	Failed       atomic.Int64 // attempted and failed, or refused by the egress policy
	Skipped      atomic.Int64 // not attempted: the endpoint's circuit was open
	Retried      atomic.Int64 // written to the retry topic
	Throttled    atomic.Int64 // attempted; answered 429, or 503 with Retry-After
	Deferred     atomic.Int64 // written to the retry topic to go again after the endpoint's pause, attempts unchanged
	DeadLettered atomic.Int64 // written to the dead-letter topic
	Unmatched    atomic.Int64 // events no subscription matched
}

// Delivery is one event on its way to one subscription: the record that
// would be written if it leaves the source partition undelivered, plus
// what the logs and metrics say about it.
type Delivery struct {
	Record
	Sub        *subscriptions.Subscription
	CampaignID string    // for the logs; "" when not known (a retry)
	EventTime  time.Time // the source message's timestamp; zero when not known (a retry)
	// fromSource: read from its source partition now, not back from the
	// retry tiers. Only such a delivery joins its chain.
	fromSource bool
}

// Settler settles each attempt's result: it is the one place that counts
// outcomes (stats and metrics), writes retry records and dead letters,
// disables a subscription on 410 Gone and logs what became of a failed
// delivery. The source fan-out and the retry consumer both settle through
// it.
type Settler struct {
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
	// chains keeps each (subscription, key)'s order across the retry
	// tiers; nil keeps none (KeepOrder).
	chains *chains
	// deferrals, when set, is told of each deferral (CountDeferrals).
	deferrals DeferralCounter
}

// NewSettler builds the settler on its sinks and policy.
func NewSettler(sink Sink, d Disabler, policy Policy, rec Recorder, log *zap.Logger) *Settler {
	sampled := log.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return zapcore.NewSamplerWithOptions(c, time.Second, 10, 1000)
	}))
	return &Settler{sink: sink, disabler: d, policy: policy, rec: rec, log: log, skipped: sampled, now: time.Now}
}

// Stats returns the live outcome counters.
func (s *Settler) Stats() *Stats { return &s.stats }

// KeepOrder makes the settler keep each (subscription, key)'s deliveries
// in order across the retry tiers, with its chains in store. Call it
// before the first delivery.
func (s *Settler) KeepOrder(store ChainStore) { s.chains = newChains(store, s.log) }

// CountDeferrals makes the settler tell c of every deferral and of every
// deferred delivery read back. Call it before the first delivery.
func (s *Settler) CountDeferrals(c DeferralCounter) { s.deferrals = c }

// returned counts d, read back from the retry tiers, if it was deferred.
func (s *Settler) returned(d *Delivery) {
	if s.deferrals != nil && d.Deferred && d.Sub != nil {
		s.deferrals.Returned(d.Sub.URL, s.now().Sub(d.FirstDeferredAt))
	}
}

// Released tells the settler the process no longer reads a source
// partition: the partition's chains may change under another owner.
func (s *Settler) Released(topic string, partition int) {
	s.chains.released(order.Partition{Topic: topic, Partition: partition})
}

// Follow defers d, a delivery read from its source partition, without an
// attempt: an earlier delivery of its (subscription, key), due at prevDue,
// waits in the retry tiers, and d goes behind it. It reports whether d is
// settled.
func (s *Settler) Follow(ctx context.Context, d *Delivery, prevDue time.Time) bool {
	now := s.now()
	wait := max(chainWait(0), prevDue.Add(followGap).Sub(now))
	return s.deferred(ctx, d, Verdict{Attempt: NumOutcomes, Next: Deferred, Backoff: wait}, Result{Err: errBehind}, now)
}

// Wait writes rec back to the retry tiers unchanged but for its wait
// count: the member before it in its chain is not settled yet. It comes
// back after the chain's head is due (headDue; zero if unknown), and at
// least chainWait from now. It reports whether rec is settled (moved on).
func (s *Settler) Wait(ctx context.Context, d *Delivery, headDue time.Time) bool {
	now := s.now()
	d.NotBefore = now.Add(chainWait(d.ChainWaits))
	if after := headDue.Add(followGap); after.After(d.NotBefore) {
		d.NotBefore = after
	}
	d.ChainWaits++
	d.Deferred = false // counted as read back already
	if err := s.sink.Retry(ctx, d.Record); err != nil {
		s.log.Info("delivery waiting for an earlier one not written back at shutdown; it will be read again", append(d.fields(Result{}), zap.Error(err))...)
		return false
	}
	return true
}

// errBehind is the "result" of a delivery deferred behind an earlier one of
// its (subscription, key).
var errBehind = errors.New("not sent: an earlier delivery of the same subscription and key waits in the retry tiers")

// Settle records the result of one attempt of d and sends a failed
// delivery where the policy says: the retry topic, or the dead-letter topic
// (a 410 Gone also disables the subscription). It reports whether the
// delivery is settled; it is not when ctx ended first (shutdown), and then
// the message stays uncommitted and its next owner delivers it again.
func (s *Settler) Settle(ctx context.Context, d *Delivery, res Result) bool {
	if res.OK() {
		s.chains.settle(ctx, d)
		s.stats.Succeeded.Add(1)
		s.rec.Delivery(string(d.EventType), Succeeded, res.Status, res.Duration, d.EventTime)
		if ce := s.log.Check(zap.DebugLevel, "webhook delivered"); ce != nil {
			ce.Write(d.fields(res)...)
		}
		return true
	}
	if ctx.Err() != nil {
		s.log.Info("delivery abandoned at shutdown; it will be delivered again", d.fields(res)...)
		return false
	}
	now := s.now()
	v := s.policy.Judge(res, d.Attempts+1, d.Sub.MaxAttempts)
	if v.Next == Deferred {
		return s.deferred(ctx, d, v, res, now)
	}
	d.failedAttempt(res, now)
	skipped := errors.Is(res.Err, ErrCircuitOpen)
	log := s.log
	switch {
	case skipped:
		s.stats.Skipped.Add(1)
		res.Duration = 0
		log = s.skipped
	default:
		s.stats.Failed.Add(1)
	}
	s.rec.Delivery(string(d.EventType), v.Attempt, res.Status, res.Duration, time.Time{})
	if v.Disable {
		s.disable(ctx, d.Sub)
	}
	if v.Next == Retried {
		d.NotBefore = now.Add(v.Backoff)
		d.Deferred = false
		if s.chains.join(ctx, d) {
			return s.readAgain(d)
		}
		s.chains.booked(ctx, d)
		if err := s.sink.Retry(ctx, d.Record); err != nil {
			s.log.Info("retry record not written at shutdown; the delivery will be attempted again", append(d.fields(res), zap.Error(err))...)
			return false
		}
		s.stats.Retried.Add(1)
		s.rec.Delivery(string(d.EventType), Retried, res.Status, 0, time.Time{})
		log.Warn("webhook delivery failed; will retry", append(d.fields(res), zap.Time("not_before", d.NotBefore))...)
		return true
	}
	if !s.deadLetter(ctx, d, v.Reason, res) {
		return false
	}
	log.Warn("webhook delivery failed; not retried", append(d.fields(res), zap.String("dead_letter_reason", string(v.Reason)))...)
	return true
}

// deferred writes d to the retry topic's tiers to go again when its
// endpoint takes requests again, with its attempts unchanged: the partner
// asked for a pause (or is in one) and has not refused the delivery. Only a
// delivery still refused maxDeferral after its first deferral is
// dead-lettered.
func (s *Settler) deferred(ctx context.Context, d *Delivery, v Verdict, res Result, now time.Time) bool {
	if v.Attempt != NumOutcomes {
		s.stats.Throttled.Add(1)
		s.rec.Delivery(string(d.EventType), v.Attempt, res.Status, res.Duration, time.Time{})
		d.LastStatus, d.LastError, d.LastAttempt = res.Status, res.Err.Error(), now
		if d.FirstAttempt.IsZero() {
			d.FirstAttempt = now
		}
	}
	if d.FirstDeferredAt.IsZero() {
		d.FirstDeferredAt = now
	}
	if now.Sub(d.FirstDeferredAt) >= maxDeferral {
		if !s.deadLetter(ctx, d, ReasonExhausted, res) {
			return false
		}
		s.log.Warn("webhook delivery deferred for too long; not retried", append(d.fields(res), zap.Time("first_deferred_at", d.FirstDeferredAt))...)
		return true
	}
	d.Deferrals++
	d.Deferred = true
	d.NotBefore = now.Add(max(v.Backoff, 0))
	if v.Until.After(d.NotBefore) {
		d.NotBefore = v.Until
	}
	if s.chains.join(ctx, d) {
		return s.readAgain(d)
	}
	if res.Err != errBehind { // d was tried: it is its chain's head
		s.chains.booked(ctx, d)
	}
	if err := s.sink.Retry(ctx, d.Record); err != nil {
		s.log.Info("deferral not written at shutdown; the delivery will be attempted again", append(d.fields(res), zap.Error(err))...)
		return false
	}
	if s.deferrals != nil {
		s.deferrals.Deferred(d.Sub.URL)
	}
	s.stats.Deferred.Add(1)
	s.rec.Delivery(string(d.EventType), Deferred, res.Status, 0, time.Time{})
	if ce := s.skipped.Check(zap.InfoLevel, "webhook delivery deferred: its endpoint cannot take it now"); ce != nil {
		ce.Write(append(d.fields(res), zap.Time("not_before", d.NotBefore), zap.Int("deferrals", d.Deferrals))...)
	}
	return true
}

// readAgain settles d, read again from its source partition after a crash
// and found settled in its chain already: delivered or dead-lettered since.
func (s *Settler) readAgain(d *Delivery) bool {
	if ce := s.log.Check(zap.DebugLevel, "delivery read again after a restart was settled already; not sent again"); ce != nil {
		ce.Write(d.fields(Result{})...)
	}
	return true
}

// Unavailable dead-letters d without an attempt: its subscription was
// deleted or disabled before a retry of it was due. It reports whether the
// dead letter was written.
func (s *Settler) Unavailable(ctx context.Context, d *Delivery) bool {
	if !s.deadLetter(ctx, d, ReasonNoSubscription, Result{}) {
		return false
	}
	s.log.Warn("retry dropped to the dead-letter topic: subscription deleted or disabled", d.fields(Result{})...)
	return true
}

// deadLetter writes d to the dead-letter topic for reason and counts it:
// every path to the dead-letter topic goes through it.
func (s *Settler) deadLetter(ctx context.Context, d *Delivery, reason Reason, res Result) bool {
	d.Reason, d.DeadAt = reason, s.now()
	if err := s.sink.Dead(ctx, d.Record); err != nil {
		s.log.Info("dead letter not written at shutdown; the delivery will be attempted again", append(d.fields(res), zap.Error(err))...)
		return false
	}
	s.chains.settle(ctx, d)
	s.stats.DeadLettered.Add(1)
	s.rec.Delivery(string(d.EventType), DeadLettered, d.LastStatus, 0, time.Time{})
	return true
}

func (s *Settler) disable(ctx context.Context, sub *subscriptions.Subscription) {
	const reason = "partner answered 410 Gone"
	if err := s.disabler.Disable(ctx, sub.ID, reason); err != nil {
		s.log.Error("cannot disable subscription after 410 Gone", zap.String("subscription_id", sub.ID), zap.Error(err))
		return
	}
	s.log.Warn("subscription disabled: "+reason, zap.String("subscription_id", sub.ID), zap.String("url_origin", origin(sub.URL)))
}

// fields are the log fields of one delivery and its last result.
func (d *Delivery) fields(res Result) []zap.Field {
	fields := make([]zap.Field, 0, 16)
	fields = append(fields,
		zap.String("subscription_id", d.SubscriptionID),
		zap.String("webhook_id", d.WebhookID),
		zap.String("event_type", string(d.EventType)),
		zap.String("tenant_id", d.TenantID),
	)
	if d.RequestID != "" {
		fields = append(fields, zap.String("request_id", d.RequestID))
	}
	if d.CampaignID != "" {
		fields = append(fields, zap.String("campaign_id", d.CampaignID))
	}
	fields = append(fields,
		zap.String("topic", d.Source.Topic),
		zap.Int("partition", d.Source.Partition),
		zap.Int64("offset", d.Source.Offset),
		zap.String("key", clipKey(d.Source.Key)),
		zap.Int("attempt", max(d.Attempts, 1)),
		zap.Int("status", res.Status),
		zap.Duration("duration", res.Duration),
	)
	if res.Err != nil {
		fields = append(fields, zap.Error(res.Err))
	}
	return fields
}

// clipKey bounds a Kafka key in log lines: keys come from producers.
func clipKey(k string) string {
	if len(k) > 128 {
		return k[:128]
	}
	return k
}
