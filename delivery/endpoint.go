package delivery

import (
	"context"
	"errors"
	"net/url"
	"sync"
	"time"

	"github.com/unibo/webhookd/config"
)

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

// endpoint guards one partner origin (scheme://host:port): it bounds the
// requests in flight to it and runs its circuit breaker. Every event must
// reach all of its subscriptions before its offset can be committed, so an
// endpoint that stops answering would otherwise hold every partition for the
// delivery timeout per message. Once it is found unresponsive its
// outstanding requests are abandoned and its deliveries fail fast, so the
// partitions move on and healthy partners keep their throughput.
type endpoint struct {
	slots    chan struct{}
	cfg      config.Breaker
	now      func() time.Time
	onChange func(to circuitState, reason string)

	mu       sync.Mutex
	state    circuitState
	failures int       // consecutive
	openedAt time.Time // when the circuit last opened
	probing  bool      // a half-open probe is in flight
	seq      uint64
	inflight map[uint64]*permit
	// lastSign is the last sign of life: an answer, or the moment the
	// endpoint went from idle to busy.
	lastSign time.Time
	watching bool // the stall watchdog is armed
}

func newEndpoint(concurrency int, cfg config.Breaker, now func() time.Time, onChange func(circuitState, string)) *endpoint {
	return &endpoint{
		slots:    make(chan struct{}, concurrency),
		cfg:      cfg,
		now:      now,
		onChange: onChange,
		inflight: make(map[uint64]*permit, concurrency),
	}
}

// permit is one admitted request; done must be called with its outcome.
type permit struct {
	e     *endpoint
	id    uint64
	probe bool
	// guarded by e.mu:
	cancel    context.CancelFunc // the request's, once bound
	abandoned bool               // the endpoint was found unresponsive meanwhile
}

// acquire admits a request, waiting for a free slot while the endpoint's
// circuit is closed. It fails fast with ErrCircuitOpen when the circuit is
// open (or opens while waiting).
func (e *endpoint) acquire(ctx context.Context) (*permit, error) {
	probe, err := e.admit()
	if err != nil {
		return nil, err
	}
	select {
	case e.slots <- struct{}{}:
		return e.start(probe), nil
	default:
	}
	// Every slot is taken: wait, but stop waiting if the circuit opens.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case e.slots <- struct{}{}:
			if !probe && e.State() == open {
				<-e.slots
				return nil, ErrCircuitOpen
			}
			return e.start(probe), nil
		case <-tick.C:
			if !probe && e.State() == open {
				return nil, ErrCircuitOpen
			}
		case <-ctx.Done():
			e.abandonProbe(probe)
			return nil, ctx.Err()
		}
	}
}

// admit applies the breaker before a request; probe is true for the one
// request a half-open circuit lets through.
func (e *endpoint) admit() (probe bool, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
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

func (e *endpoint) abandonProbe(probe bool) {
	if !probe {
		return
	}
	e.mu.Lock()
	e.probing = false
	e.mu.Unlock()
}

func (e *endpoint) start(probe bool) *permit {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seq++
	p := &permit{e: e, id: e.seq, probe: probe}
	if len(e.inflight) == 0 {
		e.lastSign = e.now() // busy from now: the stall clock starts
	}
	e.inflight[p.id] = p
	if !e.watching {
		e.watching = true
		time.AfterFunc(e.cfg.StallTimeout, e.watch)
	}
	return p
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
	if len(e.inflight) == 0 {
		e.watching = false
		return
	}
	silent := e.now().Sub(e.lastSign)
	if silent >= e.cfg.StallTimeout && len(e.inflight) >= e.cfg.StallRequests {
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
		e.state, e.openedAt, e.probing = open, e.now(), false
		e.notify(open, "endpoint unresponsive: requests outstanding, none answered within delivery.breaker.stall_timeout")
	}
	for _, p := range e.inflight {
		p.abandoned = true
		if p.cancel != nil {
			p.cancel()
		}
	}
}

// bind attaches the request's cancel func, so a stall can abandon it.
func (p *permit) bind(cancel context.CancelFunc) {
	p.e.mu.Lock()
	p.cancel = cancel
	abandoned := p.abandoned
	p.e.mu.Unlock()
	if abandoned {
		cancel()
	}
}

// wasAbandoned reports whether the request was abandoned by a stall.
func (p *permit) wasAbandoned() bool {
	p.e.mu.Lock()
	defer p.e.mu.Unlock()
	return p.abandoned
}

// done records the outcome of an admitted request and frees its slot.
func (p *permit) done(o outcome) {
	e := p.e
	e.mu.Lock()
	delete(e.inflight, p.id)
	if o != timedOut && !p.abandoned {
		e.lastSign = e.now()
	}
	bad := o == failed || o == timedOut
	switch {
	case p.probe && bad:
		e.state, e.openedAt, e.probing = open, e.now(), false
		e.notify(open, "probe failed")
	case p.probe && o == succeeded:
		e.state, e.failures, e.probing = closed, 0, false
		e.notify(closed, "probe succeeded")
	case p.probe:
		e.probing = false // inconclusive: the next request probes again
	case o == succeeded:
		if e.state == closed {
			e.failures = 0
		}
	case bad && e.state == closed:
		e.failures++
		if e.failures >= e.cfg.Failures {
			e.state, e.openedAt = open, e.now()
			e.notify(open, "consecutive failures reached delivery.breaker.failures")
		}
	}
	e.mu.Unlock()
	<-e.slots
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

// endpoints holds one endpoint per origin, found by URL without parsing
// it on every delivery.
type endpoints struct {
	concurrency int
	breaker     config.Breaker
	now         func() time.Time
	onChange    func(origin string, to circuitState, reason string)

	mu       sync.RWMutex
	byURL    map[string]*endpoint
	byOrigin map[string]*endpoint
}

func newEndpoints(concurrency int, breaker config.Breaker, onChange func(string, circuitState, string)) *endpoints {
	return &endpoints{
		concurrency: concurrency, breaker: breaker, now: time.Now, onChange: onChange,
		byURL: map[string]*endpoint{}, byOrigin: map[string]*endpoint{},
	}
}

// get returns the endpoint of a URL's origin.
func (es *endpoints) get(rawURL string) *endpoint {
	es.mu.RLock()
	e, ok := es.byURL[rawURL]
	es.mu.RUnlock()
	if ok {
		return e
	}
	key := origin(rawURL)
	es.mu.Lock()
	defer es.mu.Unlock()
	if e, ok = es.byOrigin[key]; !ok {
		e = newEndpoint(es.concurrency, es.breaker, es.now, func(to circuitState, reason string) {
			if es.onChange != nil {
				es.onChange(key, to, reason)
			}
		})
		es.byOrigin[key] = e
	}
	es.byURL[rawURL] = e
	return e
}

func origin(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return rawURL
	}
	return u.Scheme + "://" + u.Host
}
