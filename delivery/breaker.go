package delivery

import (
	"errors"
	"time"
)

// The circuit breaker of each endpoint (its scheduling is in endpoint.go):
// after delivery.breaker.failures consecutive failures (refused
// connections, 5xx without Retry-After, timeouts) the circuit opens and
// deliveries to the endpoint fail fast with ErrCircuitOpen; after the
// cool-down one probe request is let through, and its outcome closes or
// reopens the circuit. The probe holds nothing but itself: it takes no
// queue place and no other delivery waits for it.
//
// The stall watchdog is not part of the breaker: an endpoint with requests
// outstanding that answers none of them for delivery.breaker.stall_timeout
// is silent, and nothing more waits in memory for it (new deliveries are
// deferred), but the requests it holds keep their delivery.timeout. A
// partner may take seconds to answer; only its timeouts count against it.

// ErrCircuitOpen marks a delivery that was not attempted because its
// endpoint's circuit is open: the endpoint failed repeatedly or stopped
// answering, and is left alone until a probe shows it is back.
var ErrCircuitOpen = errors.New("circuit open: endpoint failing or unresponsive, delivery not attempted")

type circuitState int

const (
	closed circuitState = iota
	open
	halfOpen
)

func (s circuitState) String() string {
	switch s {
	case open:
		return "open"
	case halfOpen:
		return "half-open"
	}
	return "closed"
}

// outcome is what a request's result means for the breaker.
type outcome int

const (
	succeeded outcome = iota
	failed            // an answer or error that counts towards opening the circuit
	timedOut          // no answer at all: a failure, and no sign of life either
	neutral           // says nothing about the endpoint (our own shutdown, a 4xx answer)
)

// admitLocked applies the breaker before a request; probe is true for the
// one request a half-open circuit lets through.
func (e *endpoint) admitLocked() (probe bool, err error) {
	switch e.state {
	case open:
		if e.now().Sub(e.openedAt) < e.cfg.breaker.Cooldown {
			return false, ErrCircuitOpen
		}
		e.state = halfOpen
		e.probing = true
		e.notify(halfOpen, "cool-down over: probing with one request")
		return true, nil
	case halfOpen:
		if e.probing {
			return false, ErrCircuitOpen
		}
		e.probing = true
		return true, nil
	}
	return false, nil
}

// watch is the stall watchdog: while requests are outstanding it checks
// that the endpoint shows a sign of life at least every stallAfterLocked.
// With at least StallRequests outstanding and none answered for that long
// the endpoint is silent: nothing more waits for it in memory until it
// answers, and what waits is deferred while another endpoint has room
// (queueRoomLocked). Its outstanding requests are left
// to their delivery.timeout. Fewer outstanding requests hold too little to
// matter.
func (e *endpoint) watch() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.inflight.n == 0 {
		e.watching = false
		return
	}
	stall := e.stallAfterLocked()
	quiet := e.now().Sub(e.lastSign)
	if quiet >= stall && e.inflight.n >= e.cfg.breaker.StallRequests && !e.silent {
		e.silent = true
		e.shedLocked(e.now())
		e.event("silent", "requests outstanding, none answered within delivery.breaker.stall_timeout (or twice its usual round trip, if longer): new deliveries are deferred until it answers")
	}
	next := stall - quiet
	if next < 10*time.Millisecond {
		next = stall
	}
	time.AfterFunc(next, e.watch)
}

// stallAfterLocked is how long the endpoint may leave every outstanding
// request unanswered before it counts as silent: stall_timeout, or twice
// its median round trip if that is longer, at most delivery.timeout. A
// partner that always answers after 6 s is slow, not silent: with the
// bare 5 s stall_timeout it went silent in every round of its requests,
// and what waited for it was sent away to come back seconds after it had
// answered and had slots free again.
func (e *endpoint) stallAfterLocked() time.Duration {
	d := e.cfg.breaker.StallTimeout
	if rtt, ok := e.lim.medianRTT(); ok {
		d = max(d, min(2*rtt, e.cfg.timeout))
	}
	return d
}

// recordLocked moves the circuit on the outcome of an admitted request.
func (e *endpoint) recordLocked(probe bool, o outcome) {
	bad := o == failed || o == timedOut
	switch {
	case probe && bad:
		e.openLocked("probe failed")
	case probe && o == succeeded:
		e.state, e.failures, e.probing = closed, 0, false
		e.notify(closed, "probe succeeded")
	case probe:
		e.probing = false // inconclusive: the next request probes again
	case o == succeeded:
		if e.state == closed {
			e.failures = 0
		}
	case bad && e.state == closed:
		e.failures++
		if e.failures >= e.cfg.breaker.Failures {
			e.openLocked("consecutive failures reached delivery.breaker.failures")
		}
	}
}

// openLocked opens the circuit and turns away the requests waiting for a
// slot: they fail fast now rather than when a slot frees up.
func (e *endpoint) openLocked(reason string) {
	e.state, e.openedAt, e.probing = open, e.now(), false
	e.refuseWaitersLocked(ErrCircuitOpen)
	e.notify(open, reason)
}

// notify reports a state change; called with e.mu held, so onChange must
// not call back into the endpoint.
func (e *endpoint) notify(to circuitState, reason string) {
	if e.onChange != nil {
		e.onChange(to, reason)
	}
}

// State reports the circuit state.
func (e *endpoint) State() circuitState {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.state
}
