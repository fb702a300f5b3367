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

// errStalled cancels the requests outstanding to an endpoint found stalled.
var errStalled = errors.New("endpoint unresponsive: circuit opened while this request was outstanding")

type circuitState int

// outcome is what a request's result means for the breaker.
type outcome int

const (
	succeeded outcome = iota
	failed            // counts towards opening the circuit
	neutral           // says nothing about the endpoint (our own shutdown, a 4xx)
)

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

// endpoint guards one partner origin (scheme://host:port): it bounds the
// requests in flight to it and runs its circuit breaker. A partner that
// stops answering therefore holds at most its own slots, and once it is
// found stalled, its deliveries fail fast instead of waiting for the
// timeout, so the partitions move on and the healthy partners keep their
// throughput.
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
	inflight map[uint64]outstanding
}

type outstanding struct {
	started time.Time
	p       *permit
}

func newEndpoint(concurrency int, cfg config.Breaker, now func() time.Time, onChange func(circuitState, string)) *endpoint {
	return &endpoint{
		slots:    make(chan struct{}, concurrency),
		cfg:      cfg,
		now:      now,
		onChange: onChange,
		inflight: make(map[uint64]outstanding, concurrency),
	}
}

// permit is one admitted request; done must be called with its outcome.
type permit struct {
	e     *endpoint
	id    uint64
	probe bool
	// guarded by e.mu:
	cancel    context.CancelFunc // the request's, once it has one
	abandoned bool               // the endpoint was found stalled meanwhile
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

// wasAbandoned reports whether a stall cancelled the request.
func (p *permit) wasAbandoned() bool {
	p.e.mu.Lock()
	defer p.e.mu.Unlock()
	return p.abandoned
}

// acquire admits a request, waiting for a free slot while the endpoint is
// healthy. It fails fast with ErrCircuitOpen when the circuit is open, and
// opens the circuit itself when every slot has been taken for longer than
// the stall timeout. A request bound to the permit is cancelled if the
// endpoint is found stalled while it is outstanding.
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
	for {
		wait, stalled := e.untilStalled()
		if stalled {
			e.trip()
			e.abandonProbe(probe)
			return nil, ErrCircuitOpen
		}
		timer := time.NewTimer(wait)
		select {
		case e.slots <- struct{}{}:
			timer.Stop()
			if e.isOpen() && !probe {
				<-e.slots
				return nil, ErrCircuitOpen
			}
			return e.start(probe), nil
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
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

func (e *endpoint) isOpen() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.state == open
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
	e.seq++
	p := &permit{e: e, id: e.seq, probe: probe}
	e.inflight[p.id] = outstanding{started: e.now(), p: p}
	e.mu.Unlock()
	return p
}

// untilStalled says how long until the endpoint counts as stalled (every
// slot taken, the oldest request older than the stall timeout), or that it
// is stalled now.
func (e *endpoint) untilStalled() (time.Duration, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.inflight) < cap(e.slots) {
		return 10 * time.Millisecond, false // a slot is about to free up
	}
	oldest := e.now()
	for _, o := range e.inflight {
		if o.started.Before(oldest) {
			oldest = o.started
		}
	}
	left := e.cfg.StallTimeout - e.now().Sub(oldest)
	if left <= 0 {
		return 0, true
	}
	return left, false
}

// trip opens the circuit because the endpoint stopped answering, and
// abandons the requests outstanding to it: they fail now rather than each
// holding its message until the delivery timeout.
func (e *endpoint) trip() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state != open {
		e.state = open
		e.openedAt = e.now()
		e.notify(open, "endpoint unresponsive: every slot taken for longer than the stall timeout")
	}
	for _, o := range e.inflight {
		o.p.abandoned = true
		if o.p.cancel != nil {
			o.p.cancel()
		}
	}
}

// done records the outcome of an admitted request and frees its slot.
func (p *permit) done(o outcome) {
	e := p.e
	e.mu.Lock()
	delete(e.inflight, p.id)
	switch {
	case p.probe && o == failed:
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
	case o == failed && e.state == closed:
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

// State reports the circuit state, for logs and metrics.
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
