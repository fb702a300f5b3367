package delivery

import (
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/unibo/webhookd/config"
)

// Policy decides whether a failed delivery is tried again, and when.
type Policy struct {
	maxAttempts   int
	minBackoff    time.Duration
	maxBackoff    time.Duration
	retryAfterMax time.Duration
	cooldown      time.Duration // the breaker's: a circuit-open retry waits at least this
	strict        bool          // delivery.backpressure strict: a 429/503 is a failed attempt
	transport     bool
	timeout       bool
	circuit       bool
	class4xx      bool
	class5xx      bool
	statuses      map[int]bool
}

// NewPolicy builds the deployment's policy from validated configuration.
func NewPolicy(d config.Delivery) Policy {
	cfg := d.Retry
	p := Policy{
		maxAttempts:   cfg.MaxAttempts,
		minBackoff:    cfg.MinBackoff,
		maxBackoff:    cfg.MaxBackoff,
		retryAfterMax: cfg.RetryAfterMax,
		cooldown:      d.Breaker.Cooldown,
		strict:        d.Backpressure == config.BackpressureStrict,
		statuses:      map[int]bool{},
	}
	for _, on := range cfg.On {
		switch on {
		case "transport":
			p.transport = true
		case "timeout":
			p.timeout = true
		case "circuit":
			p.circuit = true
		case "4xx":
			p.class4xx = true
		case "5xx":
			p.class5xx = true
		default:
			if n, err := strconv.Atoi(on); err == nil {
				p.statuses[n] = true
			}
		}
	}
	return p
}

// MaxAttempts is the number of attempts for a subscription: its own setting
// when it has one, else the deployment's.
func (p Policy) MaxAttempts(subscriptionMax int) int {
	if subscriptionMax > 0 {
		return subscriptionMax
	}
	return p.maxAttempts
}

// Retryable reports whether the failure res is of a kind the policy
// retries. A 410 Gone never is: the partner says the endpoint is gone.
func (p Policy) Retryable(res Result) bool {
	switch {
	case res.Err == nil, res.Status == http.StatusGone:
		return false
	case errors.As(res.Err, new(*BlockedError)), errors.As(res.Err, new(*SigningError)):
		return false // it would be refused again
	case errors.Is(res.Err, ErrCircuitOpen):
		return p.circuit
	case errors.Is(res.Err, ErrTimeout):
		return p.timeout
	case res.Status == 0:
		return p.transport
	case p.statuses[res.Status]:
		return true
	case res.Status >= 500:
		return p.class5xx
	case res.Status >= 400:
		return p.class4xx
	}
	return false
}

// Backoff is the wait before attempt number next (2 for the first retry):
// exponential with full jitter, lengthened (never shortened) by a partner's
// Retry-After on 429 and 503, capped at retry_after_max, and at least the
// breaker's cool-down after a delivery skipped by an open circuit.
func (p Policy) Backoff(next int, res Result) time.Duration {
	ceiling := p.minBackoff
	for i := 2; i < next && ceiling < p.maxBackoff; i++ {
		ceiling *= 2
	}
	ceiling = min(ceiling, p.maxBackoff)
	d := time.Duration(rand.Int64N(int64(ceiling) + 1))
	if res.Status == http.StatusTooManyRequests || res.Status == http.StatusServiceUnavailable {
		d = max(d, min(res.RetryAfter, p.retryAfterMax))
	}
	if errors.Is(res.Err, ErrCircuitOpen) {
		d = max(d, p.cooldown)
	}
	return d
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP
// date. Zero when absent or unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		if secs < 0 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
