package delivery

import (
	"errors"
	"time"
)

// The circuit breaker of each endpoint (its slots are in endpoint.go): after
// delivery.breaker.failures consecutive failures, or when requests are
// outstanding and none is answered within delivery.breaker.stall_timeout
// (the stall watchdog), the circuit opens and deliveries to the endpoint fail
// fast with ErrCircuitOpen; after the cool-down one probe request is let
// through, and its outcome closes or reopens the circuit.

// ErrCircuitOpen marks a delivery that was not attempted because its
// endpoint's circuit is open: the endpoint failed repeatedly or stopped
// answering, and is left alone until a probe shows it is back.
var ErrCircuitOpen = errors.New("circuit open: endpoint failing or unresponsive, delivery not attempted")

// errStalled is the error of requests abandoned when their endpoint was
// found unresponsive.
var errStalled = errors.New("endpoint unresponsive: request abandoned when its circuit opened")

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
		if e.now().Sub(e.openedAt) < e.cfg.Cooldown {
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
// that the endpoint shows a sign of life at least every stall timeout.
// With at least StallRequests outstanding and none answered for that long,
// the endpoint is unresponsive: its circuit opens and its outstanding
// requests are abandoned. Fewer outstanding requests hold too few
// deliveries to matter, and a quiet, slow partner is left to its timeout.
func (e *endpoint) watch() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.inflight.n == 0 {
		e.watching = false
		return
	}
	silent := e.now().Sub(e.lastSign)
	if silent >= e.cfg.StallTimeout && e.inflight.n >= e.cfg.StallRequests {
		e.tripLocked()
		e.lastSign = e.now()
	}
	next := e.cfg.StallTimeout - e.now().Sub(e.lastSign)
	if next < 10*time.Millisecond {
		next = e.cfg.StallTimeout
	}
	time.AfterFunc(next, e.watch)
}

// tripLocked opens the circuit because the endpoint stopped answering and
// abandons the requests outstanding to it: they fail now instead of each
// holding its message until the delivery timeout.
func (e *endpoint) tripLocked() {
	if e.state != open {
		e.openLocked("endpoint unresponsive: requests outstanding, none answered within delivery.breaker.stall_timeout")
	}
	for p := e.inflight.head; p != nil; p = p.next {
		p.abandoned = true
		if p.cancel != nil {
			p.cancel()
		}
	}
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
		if e.failures >= e.cfg.Failures {
			e.openLocked("consecutive failures reached delivery.breaker.failures")
		}
	}
}

// openLocked opens the circuit and wakes the requests waiting for a slot:
// they fail fast now rather than when a slot frees up.
func (e *endpoint) openLocked(reason string) {
	e.state, e.openedAt, e.probing = open, e.now(), false
	for w := e.waiting.head; w != nil; {
		next := w.next
		if !w.probe {
			e.waiting.remove(w)
			w.err = ErrCircuitOpen
			close(w.ready)
		}
		w = next
	}
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
