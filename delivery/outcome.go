package delivery

import (
	"errors"
	"net/http"
	"time"
)

// Outcome is one thing that happened to a delivery (one event to one
// subscription), as counted in webhookd_deliveries_total{outcome}: an
// attempt's result (Succeeded, Failed, Throttled, Blocked), then, for one
// not delivered, where it went (Retried, Deferred, DeadLettered).
type Outcome int

// The outcomes, in the order metrics index them.
const (
	Succeeded    Outcome = iota // attempted; the partner answered 2xx
	Failed                      // attempted; any other answer, or none
	Blocked                     // not attempted: refused by the egress policy, or the endpoint's circuit is open
	Retried                     // written to the retry topic for a later attempt
	DeadLettered                // written to the dead-letter topic: failed for good
	Throttled                   // attempted; the partner asked for a pause (429, or 503 with Retry-After): not accepted yet
	Deferred                    // written to the retry topic's tiers to go again once the endpoint takes it, attempts unchanged
	NumOutcomes                 // how many outcomes there are, for arrays indexed by Outcome
)

var outcomeNames = [NumOutcomes]string{"success", "failure", "blocked", "retried", "dead_lettered", "throttled", "deferred"}

// String is the outcome's metric label value.
func (o Outcome) String() string {
	if o < 0 || o >= NumOutcomes {
		return "unknown"
	}
	return outcomeNames[o]
}

// Attempted reports whether the outcome is that of a request sent to the
// partner, with a duration to speak of.
func (o Outcome) Attempted() bool { return o == Succeeded || o == Failed || o == Throttled }

// Reason says why a dead letter is dead; it is written in the record.
type Reason string

// Dead-letter reasons.
const (
	ReasonNotRetryable   Reason = "not_retried"              // retries off, or a failure the policy does not retry
	ReasonExhausted      Reason = "retries_exhausted"        // every attempt the policy allows failed, or a deferred delivery was still refused after maxDeferral
	ReasonGone           Reason = "endpoint_gone"            // the partner answered 410 Gone
	ReasonNoSubscription Reason = "subscription_unavailable" // deleted or disabled before a retry was due
	ReasonBlocked        Reason = "address_blocked"          // refused by the egress policy
)

// Verdict is what the policy makes of one attempt's result: how the
// attempt counts, and where the delivery goes next.
type Verdict struct {
	Attempt Outcome       // Succeeded, Failed, Throttled or Blocked; NumOutcomes when nothing was attempted (paused)
	Next    Outcome       // Succeeded (nothing more to do), Retried, Deferred or DeadLettered
	Reason  Reason        // a dead letter's reason
	Backoff time.Duration // a retry's or deferral's wait before its next attempt
	Until   time.Time     // a deferral not sent: the turn its endpoint booked for it
	Disable bool          // the partner answered 410 Gone: turn the subscription off
}

// Judge is the policy's verdict on res, the result of attempt number
// attempt (1 for the first) of a delivery to a subscription whose own
// max_attempts is subscriptionMax (0: the deployment's).
func (p Policy) Judge(res Result, attempt, subscriptionMax int) Verdict {
	if res.OK() {
		return Verdict{Attempt: Succeeded, Next: Succeeded}
	}
	if until, ok := notSent(res.Err); ok {
		// Not an attempt, in either backpressure mode: the endpoint asked
		// for a pause, or has its fill waiting, and this delivery was never
		// offered to it.
		return Verdict{Attempt: NumOutcomes, Next: Deferred, Until: until}
	}
	if res.Backpressure() && !p.strict {
		return Verdict{Attempt: Throttled, Next: Deferred, Backoff: p.pause(res)}
	}
	v := Verdict{Attempt: Failed, Next: DeadLettered}
	switch {
	case errors.As(res.Err, new(*BlockedError)):
		v.Attempt, v.Reason = Blocked, ReasonBlocked
		return v
	case errors.Is(res.Err, ErrCircuitOpen):
		v.Attempt = Blocked
	case res.Status == http.StatusGone:
		v.Reason, v.Disable = ReasonGone, true
		return v
	}
	retryable, maxAttempts := p.Retryable(res), p.MaxAttempts(subscriptionMax)
	switch {
	case retryable && attempt < maxAttempts:
		v.Next, v.Backoff = Retried, p.Backoff(attempt+1, res)
	case retryable && maxAttempts > 1:
		v.Reason = ReasonExhausted
	default:
		v.Reason = ReasonNotRetryable
	}
	return v
}

// notSent reports whether err is a delivery its endpoint could not take
// now (PausedError, BusyError), and when it should go again.
func notSent(err error) (time.Time, bool) {
	var paused *PausedError
	if errors.As(err, &paused) {
		return paused.Until, true
	}
	var busy *BusyError
	if errors.As(err, &busy) {
		return busy.Until, true
	}
	return time.Time{}, false
}

// maxDeferral is how long a delivery may keep being deferred by a partner
// that asks for pauses before it is dead-lettered (retries_exhausted): a
// partner refusing everything for a day is down, whatever it answers.
const maxDeferral = 24 * time.Hour

// pause is the wait a 429 or 503 asks for: its Retry-After, capped at
// retry_after_max, or 1 s without one.
func (p Policy) pause(res Result) time.Duration {
	if res.RetryAfter <= 0 {
		return time.Second
	}
	return min(res.RetryAfter, p.retryAfterMax)
}
