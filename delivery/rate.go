package delivery

import (
	"math"
	"time"
)

// Rate limits with explicit time: a token bucket (a subscription's max_rate,
// and the pacing inside rateControl) and the adaptive rate an endpoint is
// held to after it answers 429. Like concurrencyLimit they are pure: told the
// time by every call, no goroutine, no lock; the owner serialises the calls.

// tokenBucket lets through rate requests per second on average and at most
// burst at once. A rate of 0 is unlimited.
type tokenBucket struct {
	rate, burst float64
	tokens      float64
	last        time.Time // when tokens was last brought up to date; zero: not yet
}

// newTokenBucket returns a full bucket. A burst below 1 is taken as 1: a
// bucket that can never hold a whole token would let nothing through.
func newTokenBucket(rate, burst float64) *tokenBucket {
	b := &tokenBucket{}
	b.set(time.Time{}, rate, burst)
	b.tokens = b.burst
	return b
}

// take takes a token if there is one. If not it takes nothing and says how
// long until there will be one, so the caller can wait, or schedule the
// delivery, instead of polling.
func (b *tokenBucket) take(now time.Time) (ok bool, wait time.Duration) {
	if b.rate <= 0 {
		return true, 0
	}
	b.refill(now)
	if b.tokens >= 1-tokenSlack {
		b.tokens--
		return true, 0
	}
	secs := (1 - b.tokens) / b.rate // tokens < 1: nothing is taken
	return false, max(time.Duration(math.Ceil(secs*float64(time.Second))), 1)
}

// tokenSlack absorbs float rounding: a token accrued in many steps of
// rate·Δt may add up to 0.99999999999, and a caller that waited exactly the
// wait it was told must get its token. It is less than 1 ns earns at any
// rate above 0.1/s, so it never hands a token out early.
const tokenSlack = 1e-10

// setRate changes the rate from now on; the tokens gathered so far are kept.
func (b *tokenBucket) setRate(now time.Time, rate float64) { b.set(now, rate, b.burst) }

func (b *tokenBucket) set(now time.Time, rate, burst float64) {
	if b.rate > 0 {
		b.refill(now) // what accrued at the old rate is earned
	} else {
		b.tokens, b.last = max(burst, 1), now // leaving unlimited: a full bucket
	}
	b.rate, b.burst = max(rate, 0), max(burst, 1)
	b.tokens = min(b.tokens, b.burst)
}

func (b *tokenBucket) refill(now time.Time) {
	if b.last.IsZero() || now.Before(b.last) {
		// The first call, or a clock that stepped back: nothing accrues, and
		// the bucket never goes back in time.
		if b.last.IsZero() {
			b.last = now
		}
		return
	}
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
}

const (
	// rateAcceptedWindow is the time constant τ of the accepted-rate EWMA.
	// The EWMA reads a burst of N acceptances as N/τ and a steady N/s as N/s;
	// with τ = 1 s, the usual partner quota of N per second reads as N/s
	// whether it was spent evenly or in the first milliseconds of its window
	// (which is how the first 429 usually comes). With τ = 2 s that first cut
	// landed at half the quota (449/s for 1,000/s in the bench).
	rateAcceptedWindow = time.Second
	// rateBackoff: on a 429 the rate becomes this share of the accepted rate.
	// A fixed-window partner that answers 429 has spent its window and will
	// refuse all we send until the window turns, and the one-cut-per-second
	// rule cannot react again before then: every request sent at the new rate
	// in the rest of the window is a 429. So the cut is deep (0.9 made 5.2%
	// of the bench's requests 429s, 0.6 makes 3.7%), and the climb back is
	// fast instead (rateControl.advance).
	rateBackoff = 0.6
	// rateMin is the lowest rate a cut goes to, in requests/s.
	rateMin = 1.0
	// rateCutGap is the shortest time between two cuts: the 429s of the
	// requests already in flight when the first came say nothing new.
	rateCutGap = time.Second
	// rateProbe is the increase per calm second once the rate is back at the
	// accepted rate of the last cut, a share of the rate (at least 1/s).
	rateProbe = 0.01
	// rateReleaseAfter and rateReleaseFactor: after this long without a
	// 429 and with the rate above this multiple of the accepted rate at the
	// last cut, the endpoint is unlimited again.
	rateReleaseAfter  = 5 * time.Minute
	rateReleaseFactor = 2.0
	// rateBurstShare: the bucket holds at most this share of a second's
	// requests, so no 1 s window overshoots the rate by more than 5%.
	rateBurstShare = 1.0 / 20
)

// rateControl is the request rate an endpoint is held to after it answered
// 429. It is unlimited until the first 429. On a 429 the rate is cut to 0.6
// of the rate the partner was accepting (an EWMA over about 1 s), at most
// once per second. Each calm second (no 429 in it) it rises: by half the way
// back to the accepted rate of the last cut while below it, by 1% (at least
// 1/s) beyond it, probing for more. After 5 calm minutes, once at twice
// that accepted rate, the endpoint is unlimited again.
//
// The climb is BIC-TCP's binary search: the accepted rate at the cut is the
// best guess of the partner's quota, so the rate goes back to it fast (0.6,
// 0.8, 0.9, 0.95 of it after 0, 1, 2, 3 s) and probes past it slowly. The
// plain +1% per second asked for first took 80 s to climb from 450/s to a
// 1,000/s quota: the bench's 20,000 deliveries took 36 s against a target of
// 26 s. With this climb they take 22.5 s (rate_test.go).
type rateControl struct {
	acc   float64   // EWMA of accepted requests/s, as of accAt
	accAt time.Time // zero before the first accepted request

	r            float64   // requests/s; 0: unlimited
	cutAccepted  float64   // the accepted rate at the last cut
	lastCut      time.Time // zero before the first cut
	lastThrottle time.Time // the last 429
	calmSince    time.Time // start of the second being judged calm
	bucket       tokenBucket
}

func newRateControl() *rateControl { return &rateControl{} }

// rate is the current limit in requests/s, 0 when unlimited (for metrics).
func (c *rateControl) rate() float64 { return c.r }

// accepted records a request the partner accepted: any answer but a 429.
func (c *rateControl) accepted(now time.Time) {
	c.advance(now)
	c.acc = c.acceptedRate(now) + 1/rateAcceptedWindow.Seconds()
	c.accAt = now
}

// throttled records a 429, with or without Retry-After (the pause it asks
// for is kept elsewhere; this is about the rate after it).
func (c *rateControl) throttled(now time.Time) {
	c.advance(now)
	c.lastThrottle, c.calmSince = now, now
	if c.r > 0 && now.Sub(c.lastCut) < rateCutGap {
		return
	}
	acc := c.acceptedRate(now)
	r := max(rateMin, rateBackoff*acc)
	if c.r > 0 {
		r = min(r, c.r) // a cut never raises the rate
	}
	c.r, c.cutAccepted, c.lastCut = r, acc, now
	c.bucket.set(now, r, c.burst())
	c.bucket.tokens = 0 // no burst straight after a 429
}

// take asks to send one request now: ok, or how long until the rate allows one.
func (c *rateControl) take(now time.Time) (ok bool, wait time.Duration) {
	c.advance(now)
	if c.r == 0 {
		return true, 0
	}
	return c.bucket.take(now)
}

// acceptedRate is the EWMA of accepted requests/s: each acceptance adds 1/τ
// and the sum decays by e^(-t/τ), so a steady rate reads as itself.
func (c *rateControl) acceptedRate(now time.Time) float64 {
	if c.accAt.IsZero() || !now.After(c.accAt) {
		return c.acc
	}
	return c.acc * math.Exp(-now.Sub(c.accAt).Seconds()/rateAcceptedWindow.Seconds())
}

func (c *rateControl) burst() float64 { return max(1, c.r*rateBurstShare) }

// advance credits the calm seconds completed up to now. Idle seconds count
// as calm: an endpoint idle for 5 minutes is released, and the 1/20 s burst
// keeps the first second after a long idle close to the rate. The loop ends
// within about 5 minutes' worth of seconds, as the release does.
func (c *rateControl) advance(now time.Time) {
	for c.r > 0 && now.Sub(c.calmSince) >= time.Second {
		t := c.calmSince.Add(time.Second)
		c.calmSince = t
		step := max(1, c.r*rateProbe)
		if c.r < c.cutAccepted {
			step = max(step, (c.cutAccepted-c.r)/2)
		}
		c.r += step
		if t.Sub(c.lastThrottle) >= rateReleaseAfter && c.r > rateReleaseFactor*c.cutAccepted {
			c.r = 0
			return
		}
		c.bucket.set(t, c.r, c.burst())
	}
}

// reserve takes a token now or, when the next one is due within horizon,
// books it: the bucket goes below zero, and the caller waits the returned
// time before it acts. When the token is further off it takes nothing and
// reports false with the wait. A rate of 0 is unlimited.
func (b *tokenBucket) reserve(now time.Time, horizon time.Duration) (time.Duration, bool) {
	if b.rate <= 0 {
		return 0, true
	}
	b.refill(now)
	if b.tokens >= 1-tokenSlack {
		b.tokens--
		return 0, true
	}
	wait := time.Duration(math.Ceil((1 - b.tokens) / b.rate * float64(time.Second)))
	if wait > horizon {
		return wait, false
	}
	b.tokens--
	return wait, true
}
