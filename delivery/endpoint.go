package delivery

import (
	"context"
	"net/url"
	"sync"
	"time"

	"github.com/unibo/webhookd/config"
)

// endpoint guards one partner origin (scheme://host:port): it bounds the
// requests in flight to it and runs its circuit breaker (breaker.go). Every event must
// reach all of its subscriptions before its offset can be committed, so an
// endpoint that stops answering would otherwise hold every partition for the
// delivery timeout per message. Once it is found unresponsive its
// outstanding requests are abandoned and its deliveries fail fast, so the
// partitions move on and healthy partners keep their throughput.
type endpoint struct {
	limit    int // slots: requests in flight at most
	cfg      config.Breaker
	now      func() time.Time
	onChange func(to circuitState, reason string)

	mu       sync.Mutex
	state    circuitState
	failures int       // consecutive
	openedAt time.Time // when the circuit last opened
	probing  bool      // a half-open probe is in flight
	// Slots are a count and a queue rather than a buffered channel: with
	// more requests than slots (the bench's fast run has two per slot), a
	// waiter parks on a channel of its own and is handed a freed slot, where
	// waiting on the shared slot channel and a shared "opened" channel made
	// every wake-up lock and dequeue hundreds of waiters (1.9% of CPU).
	active   int        // slots held
	waiting  waiterList // requests waiting for a slot, oldest first
	inflight permitList
	// pausedUntil is when a partner that answered 429, or 503 with
	// Retry-After, takes requests again; none is sent to it before.
	pausedUntil time.Time
	// lastSign is the last sign of life: an answer, or the moment the
	// endpoint went from idle to busy.
	lastSign time.Time
	watching bool // the stall watchdog is armed
}

func newEndpoint(concurrency int, cfg config.Breaker, now func() time.Time, onChange func(circuitState, string)) *endpoint {
	return &endpoint{
		limit:    concurrency,
		cfg:      cfg,
		now:      now,
		onChange: onChange,
	}
}

// permit is one admitted request; done must be called with its outcome.
type permit struct {
	e     *endpoint
	probe bool
	// guarded by e.mu:
	prev, next *permit            // in e.inflight
	cancel     context.CancelFunc // the request's, once bound
	abandoned  bool               // the endpoint was found unresponsive meanwhile
}

// permitList is the endpoint's outstanding requests: an intrusive list, so
// a request's start and end cost no map insert and delete.
type permitList struct {
	head *permit
	n    int
}

func (l *permitList) add(p *permit) {
	p.next = l.head
	if l.head != nil {
		l.head.prev = p
	}
	l.head = p
	l.n++
}

func (l *permitList) remove(p *permit) {
	if p.prev != nil {
		p.prev.next = p.next
	} else {
		l.head = p.next
	}
	if p.next != nil {
		p.next.prev = p.prev
	}
	p.prev, p.next = nil, nil
	l.n--
}

// waiter is a request waiting for a slot. Once ready is closed, exactly one
// of p (the slot was handed to it) and err (the circuit opened) is set.
type waiter struct {
	probe      bool
	ready      chan struct{}
	p          *permit
	err        error
	prev, next *waiter
}

// waiterList is a FIFO of waiters.
type waiterList struct{ head, tail *waiter }

func (l *waiterList) push(w *waiter) {
	w.prev = l.tail
	if l.tail != nil {
		l.tail.next = w
	} else {
		l.head = w
	}
	l.tail = w
}

func (l *waiterList) remove(w *waiter) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		l.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		l.tail = w.prev
	}
	w.prev, w.next = nil, nil
}

// acquire admits a request, waiting for a free slot while the endpoint's
// circuit is closed. It fails fast with ErrCircuitOpen when the circuit is
// open (or opens while waiting; a waiting probe keeps waiting: it is how
// the circuit finds out).
func (e *endpoint) acquire(ctx context.Context) (*permit, error) {
	e.mu.Lock()
	if until := e.pausedUntil; e.now().Before(until) {
		e.mu.Unlock()
		return nil, &PausedError{Until: until}
	}
	probe, err := e.admitLocked()
	if err != nil {
		e.mu.Unlock()
		return nil, err
	}
	if e.active < e.limit {
		e.active++
		p := e.startLocked(probe)
		e.mu.Unlock()
		return p, nil
	}
	w := &waiter{probe: probe, ready: make(chan struct{})}
	e.waiting.push(w)
	e.mu.Unlock()
	select {
	case <-w.ready:
		return w.p, w.err
	case <-ctx.Done():
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	select {
	case <-w.ready: // served meanwhile: give the slot back
		if w.p != nil {
			e.inflight.remove(w.p)
			e.freeSlotLocked()
		}
	default:
		e.waiting.remove(w)
	}
	if probe {
		e.probing = false
	}
	return nil, ctx.Err()
}

// freeSlotLocked hands a freed slot to the oldest waiter, or returns it.
func (e *endpoint) freeSlotLocked() {
	if w := e.waiting.head; w != nil {
		e.waiting.remove(w)
		if !w.probe && e.state != closed {
			// Not reached: waiters are failed when the circuit opens, and
			// none but a probe is admitted until it closes. Kept as a guard.
			w.err = ErrCircuitOpen
			close(w.ready)
			e.freeSlotLocked()
			return
		}
		w.p = e.startLocked(w.probe)
		close(w.ready)
		return
	}
	e.active--
}

func (e *endpoint) startLocked(probe bool) *permit {
	p := &permit{e: e, probe: probe}
	if e.inflight.n == 0 {
		e.lastSign = e.now() // busy from now: the stall clock starts
	}
	e.inflight.add(p)
	if !e.watching {
		e.watching = true
		time.AfterFunc(e.cfg.StallTimeout, e.watch)
	}
	return p
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

// done records the outcome of an admitted request and frees its slot; a
// pause longer than zero is the partner asking for no requests for that
// long (a 429, or a 503 with Retry-After). It reports whether the request
// had been abandoned by a stall.
func (p *permit) done(o outcome, pause time.Duration) (abandoned bool) {
	e := p.e
	e.mu.Lock()
	if pause > 0 {
		if until := e.now().Add(pause); until.After(e.pausedUntil) {
			e.pausedUntil = until
		}
	}
	e.inflight.remove(p)
	abandoned = p.abandoned
	if o != timedOut && !abandoned {
		e.lastSign = e.now()
	}
	e.recordLocked(p.probe, o)
	e.freeSlotLocked()
	e.mu.Unlock()
	return abandoned
}

// PausedError is a delivery not attempted because its endpoint asked for a
// pause (429, or 503 with Retry-After) that lasts until Until.
type PausedError struct{ Until time.Time }

func (e *PausedError) Error() string {
	return "not sent: the endpoint asked for a pause (429 or 503 with Retry-After) until " + e.Until.UTC().Format(time.RFC3339)
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
