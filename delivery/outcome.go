package delivery

import (
	"errors"
	"net/http"
	"time"
)

// Outcome is one thing that happened to a delivery (one event to one
// subscription), as counted in webhookd_deliveries_total{outcome}: an
// attempt's result (Succeeded, Failed, Blocked), then, for a failure, where
// the delivery went (Retried, DeadLettered).
type Outcome int

// The outcomes, in the order metrics index them.
const (
	Succeeded    Outcome = iota // attempted; the partner answered 2xx
	Failed                      // attempted; any other answer, or none
	Blocked                     // not attempted: refused by the egress policy, or the endpoint's circuit is open
	Retried                     // written to the retry topic for a later attempt
	DeadLettered                // written to the dead-letter topic: failed for good
	NumOutcomes                 // how many outcomes there are, for arrays indexed by Outcome
)

var outcomeNames = [NumOutcomes]string{"success", "failure", "blocked", "retried", "dead_lettered"}

// String is the outcome's metric label value.
func (o Outcome) String() string {
	if o < 0 || o >= NumOutcomes {
		return "unknown"
	}
	return outcomeNames[o]
}

// Attempted reports whether the outcome is that of a request sent to the
// partner, with a duration to speak of.
func (o Outcome) Attempted() bool { return o == Succeeded || o == Failed }

// Reason says why a dead letter is dead; it is written in the record.
type Reason string

// Dead-letter reasons.
const (
	ReasonNotRetryable   Reason = "not_retried"              // retries off, or a failure the policy does not retry
	ReasonExhausted      Reason = "retries_exhausted"        // every attempt the policy allows failed
	ReasonGone           Reason = "endpoint_gone"            // the partner answered 410 Gone
	ReasonNoSubscription Reason = "subscription_unavailable" // deleted or disabled before a retry was due
	ReasonBlocked        Reason = "address_blocked"          // refused by the egress policy
)

// Verdict is what the policy makes of one attempt's result: how the
// attempt counts, and where the delivery goes next.
type Verdict struct {
	Attempt Outcome       // Succeeded, Failed or Blocked
	Next    Outcome       // Succeeded (nothing more to do), Retried or DeadLettered
	Reason  Reason        // a dead letter's reason
	Backoff time.Duration // a retry's wait before its next attempt
	Disable bool          // the partner answered 410 Gone: turn the subscription off
}

// Judge is the policy's verdict on res, the result of attempt number
// attempt (1 for the first) of a delivery to a subscription whose own
// max_attempts is subscriptionMax (0: the deployment's).
func (p Policy) Judge(res Result, attempt, subscriptionMax int) Verdict {
	if res.OK() {
		return Verdict{Attempt: Succeeded, Next: Succeeded}
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
