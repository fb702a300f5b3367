package delivery

import (
	"slices"
	"time"
)

// The adaptive concurrency limit of an endpoint: how many requests may be in
// flight to it. The bound is loss-based AIMD, as TCP's congestion window is:
// it starts at the ceiling (most partners are healthy, and starting low would
// throttle every partner after each restart), is cut by a quarter when the
// endpoint shows overload (timeouts, transport errors, 502/503/504), and
// creeps back by one per window of successes. Latency alone never lowers it:
// the partner guide allows answers to take seconds, so a slow partner that
// answers is a healthy one; latency only sets how long a cut takes to show.
//
// The unit is pure: no clock, no goroutine, no lock. Every method is told
// the time, and its owner (the endpoint) serialises the calls.

// limitSignal is what one finished request says about the endpoint's capacity.
type limitSignal int

const (
	// limitOK: a 2xx, or any answer that is not a sign of overload.
	limitOK limitSignal = iota
	// limitLoss: a timeout, a transport error, or a 502/503/504 without
	// Retry-After: the endpoint or its proxy is shedding load.
	limitLoss
	// limitIgnore: says nothing about capacity (our own shutdown, a 4xx, a
	// request refused locally before it was sent).
	limitIgnore
)

// limitSample is one finished request.
type limitSample struct {
	rtt time.Duration // from sending the request to its answer, or to giving up on it
	// inFlight is how many requests to the endpoint were outstanding when this
	// one finished, itself included.
	inFlight int
	signal   limitSignal
}

const (
	// limitBackoff is the multiplicative decrease on loss. TCP halves; a
	// quarter is enough here because a cut also sheds the queue behind it, and
	// loss from a partner is more often a blip than a full link.
	limitBackoff = 0.75
	// limitMinEpoch is the shortest time between two cuts, whatever the rtt:
	// the requests of a burst that all time out together must cut once.
	limitMinEpoch = time.Second
	// limitRTTs is how many recent rtts the p50 is taken over.
	limitRTTs = 32
)

// concurrencyLimit is the loss-based AIMD limit of one endpoint, between a
// floor and a ceiling.
//
// Decrease: on a loss, L = max(floor, ⌊0.75·L⌋), at most once per epoch. The
// epoch is max(p50 rtt, 1 s) since the last cut: the requests already in
// flight when the endpoint tipped over report their losses for about one rtt
// after it, and cutting on each of them would take the limit to the floor on
// a single incident (384 timeouts landing together cut once, as TCP cuts once
// per window).
//
// Increase: +1 after L successes, i.e. +1 per window of requests, TCP's
// congestion avoidance. With L requests in flight a window completes every
// rtt, so the limit grows by one per rtt: a 10 ms partner climbs from a floor
// of 4 back to 384 in 380 rtts = 3.8 s, a 100 ms partner in 38 s. The other
// choice, +1 per success, doubles L every rtt (TCP's slow start): 4 to 384 in
// 7 rtts, which after a cut runs straight back into the overload that caused
// it. Successes only count when the endpoint was using at least half of its
// limit (inFlight ≥ L/2): a partner sent five requests at a time proves
// nothing about a limit of 300, and raising on such evidence (Gradient2's
// "not when app-limited" guard) would leave the limit meaningless at the
// next burst.
//
// The p50 is the median of a ring of the last 32 rtts (successes and losses:
// a loss's rtt is how long the loss took to learn, which the epoch must
// cover). Recording is O(1); the median is sorted out of a copy only when a
// loss asks for it. An EWMA would be cheaper still, but is a mean: a few
// timeouts at the request timeout drag it far above what most requests take.
type concurrencyLimit struct {
	floor, ceiling int
	cur            int
	acked          int       // successes counted towards the next +1
	lastCut        time.Time // zero before the first cut
	rtts           [limitRTTs]time.Duration
	nRTT           int // rtts recorded, at most limitRTTs
	nextRTT        int // ring slot for the next rtt
}

// newConcurrencyLimit returns a limit at its ceiling. A floor below 1 is
// taken as 1, and a ceiling below the floor as the floor.
func newConcurrencyLimit(floor, ceiling int) *concurrencyLimit {
	floor = max(floor, 1)
	ceiling = max(ceiling, floor)
	return &concurrencyLimit{floor: floor, ceiling: ceiling, cur: ceiling}
}

// limit is how many requests may be in flight to the endpoint now.
func (c *concurrencyLimit) limit() int { return c.cur }

// observe applies one finished request to the limit.
func (c *concurrencyLimit) observe(now time.Time, s limitSample) {
	if s.signal == limitIgnore {
		return
	}
	if s.rtt > 0 {
		c.rtts[c.nextRTT] = s.rtt
		c.nextRTT = (c.nextRTT + 1) % limitRTTs
		c.nRTT = min(c.nRTT+1, limitRTTs)
	}
	switch s.signal {
	case limitLoss:
		if !c.lastCut.IsZero() && now.Sub(c.lastCut) < c.epoch() {
			return // a loss of the incident already answered by the last cut
		}
		c.cut(now, max(c.floor, int(float64(c.cur)*limitBackoff)))
	case limitOK:
		if 2*s.inFlight < c.cur || c.cur >= c.ceiling {
			return
		}
		c.acked++
		if c.acked >= c.cur {
			c.cur++
			c.acked = 0
		}
	}
}

// toFloor drops the limit to its floor at once: the endpoint stopped
// answering altogether (the stall watchdog's verdict), which a quarter off
// per epoch would take minutes to act on. It starts an epoch like a cut, so
// the timeouts of the requests it strands do not cut again.
func (c *concurrencyLimit) toFloor(now time.Time) { c.cut(now, c.floor) }

func (c *concurrencyLimit) cut(now time.Time, to int) {
	c.cur = to
	c.acked = 0
	c.lastCut = now
}

// medianRTT is the median of the recent rtts; false before any.
func (c *concurrencyLimit) medianRTT() (time.Duration, bool) {
	if c.nRTT == 0 {
		return 0, false
	}
	var buf [limitRTTs]time.Duration
	r := buf[:c.nRTT]
	copy(r, c.rtts[:c.nRTT])
	slices.Sort(r)
	return r[len(r)/2], true
}

// epoch is how long after a cut further losses are taken as the same
// incident: the median rtt, at least limitMinEpoch.
func (c *concurrencyLimit) epoch() time.Duration {
	m, _ := c.medianRTT()
	return max(m, limitMinEpoch)
}
