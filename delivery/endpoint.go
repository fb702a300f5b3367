package delivery

import (
	"context"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/unibo/webhookd/config"
)

// endpoint schedules the requests to one partner origin
// (scheme://host:port): it holds them to the endpoint's adaptive
// concurrency limit (limit.go) and, once the partner has answered 429, to
// its rate (rate.go); it keeps a short queue of what may wait in memory for
// it, pauses it for a Retry-After, and runs its circuit breaker
// (breaker.go).
//
// What the endpoint cannot take now is refused at once rather than left
// waiting: PausedError while the partner asked for a pause, BusyError when
// its queue is full, ErrCircuitOpen while it is down. The first two are
// deferred through the retry tiers with their attempts unchanged, so one
// partner's pace never holds the source partitions, and so never another
// partner's deliveries. A request admitted keeps its delivery.timeout,
// whatever else is waiting: nothing is abandoned to make room.
type endpoint struct {
	cfg      endpointConfig
	now      func() time.Time
	onChange func(to circuitState, reason string)
	onEvent  func(what, detail string)

	mu       sync.Mutex
	state    circuitState
	failures int       // consecutive
	openedAt time.Time // when the circuit last opened
	probing  bool      // a half-open probe is in flight
	lim      *concurrencyLimit
	rate     *rateControl
	// Slots are a count and a queue rather than a buffered channel: a
	// waiter parks on a channel of its own and is handed a freed slot, where
	// waiting on a shared channel made every wake-up lock and dequeue
	// hundreds of waiters (1.9% of CPU in the fast bench).
	active   int        // slots held
	waiting  waiterList // requests waiting for a slot, oldest first
	inflight permitList
	// pausedUntil is when a partner that answered 429, or 503 with
	// Retry-After, takes requests again; none is sent to it before.
	pausedUntil time.Time
	// nextFree is the next time a deferred delivery is booked to come back:
	// deferrals are spaced at the endpoint's capacity, so they return about
	// when it can take them rather than all at once.
	nextFree time.Time
	// lastSign is the last sign of life: an answer, or the moment the
	// endpoint went from idle to busy.
	lastSign time.Time
	watching bool // the stall watchdog is armed
	// silent: requests outstanding and none answered for stall_timeout.
	// Nothing more waits in memory for the endpoint until it answers.
	silent bool
	pacing bool // a timer will dispatch the queue when the rate allows
	paused bool // a pause was logged and its end not yet
	// deferred and returned count deliveries deferred and read back;
	// deferredAge is the wait of the last one read back (EndpointStatus).
	deferred, returned int64
	deferredAge        time.Duration
	// midStart is the start of the median outstanding request as of midAt
	// (midAgeLocked).
	midStart, midAt time.Time
	// room is shared by the Sender's endpoints: which of them last had a
	// slot free for a delivery at once. nil: every other endpoint is taken
	// to have room.
	room *roomSignal
}

// endpointConfig is what every endpoint of a Sender shares.
type endpointConfig struct {
	ceiling  int // delivery.endpoint_concurrency
	floor    int // the lowest the adaptive limit goes
	maxQueue int // the most requests that may wait in memory for one endpoint
	timeout  time.Duration
	breaker  config.Breaker
}

const (
	// queueHorizon: an endpoint's queue holds what it is expected to
	// take in this long at its recent pace; more is deferred. Two seconds,
	// not one: a healthy partner in a backlog on a busy machine answers in
	// a few hundred milliseconds, and the source windows hand it more than
	// a second of that at once; deferring the excess (a fifth of its
	// deliveries at a one-second horizon) opened a chain for each of their
	// keys, the keys' later events followed through the retry tiers, and the
	// fast path ran at a third of its rate.
	queueHorizon = 2 * time.Second
	// minDeferral is the earliest a deferred delivery comes back: the
	// shortest delay tier.
	minDeferral = time.Second
	// limitFloor is the lowest the adaptive concurrency limit goes.
	limitFloor = 4
)

func newEndpoint(cfg endpointConfig, now func() time.Time, onChange func(circuitState, string), onEvent func(string, string)) *endpoint {
	if cfg.floor <= 0 {
		cfg.floor = min(limitFloor, cfg.ceiling)
	}
	return &endpoint{
		cfg:      cfg,
		now:      now,
		onChange: onChange,
		onEvent:  onEvent,
		lim:      newConcurrencyLimit(cfg.floor, cfg.ceiling),
		rate:     newRateControl(),
	}
}

// permit is one admitted request; done must be called with its outcome.
type permit struct {
	e     *endpoint
	probe bool
	start time.Time
	// guarded by e.mu:
	prev, next *permit // in e.inflight
}

// permitList is the endpoint's outstanding requests, newest first: an
// intrusive list, so a request's start and end cost no map insert and
// delete, and the oldest is at hand (the tail).
type permitList struct {
	head, tail *permit
	n          int
}

func (l *permitList) add(p *permit) {
	p.next = l.head
	if l.head != nil {
		l.head.prev = p
	} else {
		l.tail = p
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
	} else {
		l.tail = p.prev
	}
	p.prev, p.next = nil, nil
	l.n--
}

// waiter is a request waiting for a slot. Once ready is closed, exactly one
// of p (the slot was handed to it) and err (refused meanwhile) is set.
type waiter struct {
	ready      chan struct{}
	p          *permit
	err        error
	prev, next *waiter
}

// waiterList is a FIFO of waiters.
type waiterList struct {
	head, tail *waiter
	n          int
}

func (l *waiterList) push(w *waiter) {
	w.prev = l.tail
	if l.tail != nil {
		l.tail.next = w
	} else {
		l.head = w
	}
	l.tail = w
	l.n++
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
	l.n--
}

// acquire admits a request: at once when the endpoint has room under its
// limit and rate, after a wait in its queue when the queue has room, and
// otherwise not at all: PausedError during a pause, BusyError when the
// queue is full, ErrCircuitOpen while the circuit is open. A half-open
// probe goes at once; it holds nothing but itself.
func (e *endpoint) acquire(ctx context.Context) (*permit, error) {
	e.mu.Lock()
	now := e.now()
	if now.Before(e.pausedUntil) {
		until := e.reserveLocked(now)
		e.mu.Unlock()
		return nil, &PausedError{Until: until}
	}
	if e.paused {
		e.paused = false
		e.event("resumed", "its pause is over")
	}
	probe, err := e.admitLocked()
	if err != nil {
		e.mu.Unlock()
		return nil, err
	}
	if probe {
		e.active++
		p := e.startLocked(true)
		e.mu.Unlock()
		return p, nil
	}
	if e.waiting.n == 0 && e.active < e.lim.limit() {
		if ok, _ := e.rate.take(now); ok {
			e.active++
			p := e.startLocked(false)
			e.room.mark(e, now)
			e.mu.Unlock()
			return p, nil
		}
	}
	if qcap := e.queueRoomLocked(now); e.waiting.n >= qcap {
		// What waits beyond what the endpoint is now expected to take
		// within queueHorizon leaves too: its capacity fell (an endpoint
		// slowing down, or hanging), and a waiter holds its source
		// partition's window. Only while another endpoint has room, though
		// (roomSignal): when every endpoint sent to is as busy as this
		// one (a backlog on a machine short of CPU), moving the window on
		// would help no one, and each deferral costs a chain and a trip
		// through the retry tiers. A silent endpoint takes no more
		// waiters either way (queueCapLocked is 0), and keeps those it has
		// only while no other endpoint has room.
		e.trimWaitersLocked(now, qcap)
		until := e.reserveLocked(now)
		e.mu.Unlock()
		return nil, &BusyError{Until: until}
	}
	w := &waiter{ready: make(chan struct{})}
	e.waiting.push(w)
	e.dispatchLocked()
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
			e.active--
			e.dispatchLocked()
		}
	default:
		e.waiting.remove(w)
	}
	return nil, ctx.Err()
}

// queueCapLocked is how many requests may wait in memory for the endpoint
// now: what it is expected to take within queueHorizon at its capacity,
// none while it is silent, at most maxQueue.
func (e *endpoint) queueCapLocked(now time.Time) int {
	if e.silent {
		return 0
	}
	return int(min(e.capacityLocked(now)*queueHorizon.Seconds(), float64(e.cfg.maxQueue)))
}

// queueRoomLocked is how many requests may wait for the endpoint now:
// queueCapLocked, or, while no other endpoint has room (roomSignal), up to
// maxQueue, or just what waits already if the endpoint is silent.
func (e *endpoint) queueRoomLocked(now time.Time) int {
	qcap := e.queueCapLocked(now)
	if e.waiting.n >= qcap && qcap < e.cfg.maxQueue && !e.room.elsewhere(e, now) {
		if e.silent {
			// What waits may go on waiting (a partner slower than the
			// stall timeout sends it the moment it answers); nothing more
			// joins it.
			return e.waiting.n
		}
		return e.cfg.maxQueue
	}
	return qcap
}

// roomSignal is which of a Sender's endpoints last had a slot free for a
// delivery the moment it came, and when. An endpoint whose queue holds
// more than queueHorizon of its capacity defers the excess only while
// another endpoint had room within roomRecent: then the window slots its
// queue holds may keep events from one that could take them. When every
// endpoint sent to is as busy as this one (a backlog on a machine short of
// CPU), deferring would help no one and costs a chain and a trip through
// the retry tiers.
type roomSignal struct {
	at atomic.Int64 // unix nanoseconds
	by atomic.Pointer[endpoint]
}

// roomRecent is how long an endpoint that had room counts as having it.
const roomRecent = 500 * time.Millisecond

// mark records that e had a slot free for a delivery at now.
func (r *roomSignal) mark(e *endpoint, now time.Time) {
	if r == nil {
		return
	}
	if r.by.Load() != e {
		r.by.Store(e)
	}
	r.at.Store(now.UnixNano())
}

// elsewhere reports whether an endpoint other than e had room within
// roomRecent of now; true without a signal.
func (r *roomSignal) elsewhere(e *endpoint, now time.Time) bool {
	if r == nil {
		return true
	}
	return r.by.Load() != e && now.UnixNano()-r.at.Load() < int64(roomRecent)
}

// shed defers what waits for e beyond what it may hold now
// (queueRoomLocked), as a new delivery to it would.
func (e *endpoint) shed(now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.shedLocked(now)
}

func (e *endpoint) shedLocked(now time.Time) {
	if e.waiting.n == 0 {
		return
	}
	if qcap := e.queueRoomLocked(now); e.waiting.n > qcap {
		e.trimWaitersLocked(now, qcap)
	}
}

// capacityLocked is how many requests a second the endpoint is expected to
// take: its limit over its round-trip time, or its rate when it is paced.
func (e *endpoint) capacityLocked(now time.Time) float64 {
	c := float64(e.lim.limit()) / e.rttLocked(now).Seconds()
	if r := e.rate.rate(); r > 0 {
		c = min(c, r)
	}
	return c
}

// reserveLocked books the time a delivery refused now should come back:
// the endpoint's next free turn at its capacity, at least minDeferral from
// now and not before a pause ends. Successive bookings are spaced by one
// turn, so deferred deliveries come back about when the endpoint can take
// them rather than all at once.
//
// A silent endpoint has no capacity to speak of: its deliveries come back
// after as long again as it has been quiet, and no later than just after
// its oldest request will have timed out, when it is known to be back
// (answering, with a capacity again) or down (its circuit open, its
// deliveries failing fast). A slow partner that answers after 6 s has its
// deliveries back soon after it answers; a hung one has each of them back
// about three times in its 30 s. Spacing them at a capacity measured on
// requests that never came back booked a hung partner's deliveries days
// ahead, each one read back and written again by the longest tier every
// hour.
func (e *endpoint) reserveLocked(now time.Time) time.Time {
	at := now.Add(minDeferral)
	if e.silent {
		if quiet := now.Sub(e.lastSign); quiet > minDeferral {
			at = now.Add(quiet)
		}
		if p := e.inflight.tail; p != nil {
			if verdict := p.start.Add(e.cfg.timeout + verdictGap); verdict.Before(at) {
				at = verdict
			}
		}
		return later(at, now.Add(minDeferral))
	}
	for _, t := range [...]time.Time{e.nextFree, e.pausedUntil} {
		if t.After(at) {
			at = t
		}
	}
	e.nextFree = at.Add(time.Duration(float64(time.Second) / max(e.capacityLocked(now), 0.01)))
	return at
}

// verdictGap is how long after a silent endpoint's oldest request times
// out its deferred deliveries come back at the latest: time for the
// timeout to be counted by the breaker.
const verdictGap = 100 * time.Millisecond

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// trimWaitersLocked defers the newest waiters beyond qcap, each at its
// booked turn; the older ones keep their places.
func (e *endpoint) trimWaitersLocked(now time.Time, qcap int) {
	for e.waiting.n > qcap {
		w := e.waiting.tail
		e.waiting.remove(w)
		w.err = &BusyError{Until: e.reserveLocked(now)}
		close(w.ready)
	}
}

// rttLocked is the endpoint's round-trip time as far as it is known: the
// median of its recent answers, or the age of its median outstanding
// request if that is longer (a partner that stopped answering: none of
// its requests comes back, so they all age together); at least 10 ms.
// Before any answer it is only the latter: a new endpoint is taken to be
// fast until it shows otherwise.
//
// The median outstanding request, not the oldest: with hundreds in
// flight, the oldest is the tail of the latency distribution (a request
// that waited for a CPU, a connection being dialled), several times the
// typical round trip of a healthy partner on a busy machine, and sizing
// its queue by that deferred a fifth of a healthy partner's deliveries.
func (e *endpoint) rttLocked(now time.Time) time.Duration {
	rtt, _ := e.lim.medianRTT()
	return max(rtt, e.midAgeLocked(now), 10*time.Millisecond)
}

// midAgeRefresh is how long the age of the median outstanding request is
// reused before it is looked up again.
const midAgeRefresh = 10 * time.Millisecond

// midAgeLocked is how long the median of the endpoint's outstanding
// requests has been waiting for its answer; zero for none. The lookup
// walks half the in-flight list, so its start time is kept for
// midAgeRefresh.
func (e *endpoint) midAgeLocked(now time.Time) time.Duration {
	if e.inflight.n == 0 {
		return 0
	}
	if e.midAt.IsZero() || now.Sub(e.midAt) >= midAgeRefresh {
		p := e.inflight.tail
		for i := 0; i < e.inflight.n/2; i++ {
			p = p.prev
		}
		e.midStart, e.midAt = p.start, now
	}
	return now.Sub(e.midStart)
}

// dispatchLocked hands free slots to the oldest waiters while the limit
// and the rate allow; when only the rate holds them back, it arms a timer
// for when it will not.
func (e *endpoint) dispatchLocked() {
	for e.waiting.head != nil && e.active < e.lim.limit() {
		now := e.now()
		ok, wait := e.rate.take(now)
		if !ok {
			if !e.pacing {
				e.pacing = true
				time.AfterFunc(wait, e.paced)
			}
			return
		}
		w := e.waiting.head
		e.waiting.remove(w)
		e.active++
		w.p = e.startLocked(false)
		close(w.ready)
	}
}

func (e *endpoint) paced() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.pacing = false
	e.dispatchLocked()
}

// refuseWaitersLocked turns every waiter away with err, or, when err is
// nil, with a BusyError booked for later.
func (e *endpoint) refuseWaitersLocked(err error) {
	now := e.now()
	for w := e.waiting.head; w != nil; {
		next := w.next
		e.waiting.remove(w)
		w.err = err
		if err == nil {
			w.err = &BusyError{Until: e.reserveLocked(now)}
		}
		close(w.ready)
		w = next
	}
}

func (e *endpoint) startLocked(probe bool) *permit {
	now := e.now()
	p := &permit{e: e, probe: probe, start: now}
	if e.inflight.n == 0 {
		e.lastSign = now // busy from now: the stall clock starts
	}
	e.inflight.add(p)
	if !e.watching {
		e.watching = true
		time.AfterFunc(e.stallAfterLocked(), e.watch)
	}
	return p
}

// answer is what a finished request tells its endpoint.
type answer struct {
	breaker outcome     // for the circuit
	limit   limitSignal // for the concurrency limit
	// throttled: a 429. accepted: any other answer from the partner. Both
	// false: no answer (a timeout, a transport error), or not sent.
	throttled, accepted bool
	// pause is how long the partner asked for no requests (a 429, or a 503
	// with Retry-After); zero for none.
	pause time.Duration
}

// done records the outcome of an admitted request and frees its slot.
func (p *permit) done(a answer) {
	e := p.e
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	if a.pause > 0 {
		if until := now.Add(a.pause); until.After(e.pausedUntil) {
			if !e.paused {
				e.paused = true
				e.event("paused", "the partner asked for a pause until "+until.UTC().Format(time.RFC3339))
			}
			e.pausedUntil = until
			// What waits now would only be refused when its turn came.
			e.refuseWaitersLocked(&PausedError{Until: until})
		}
	}
	switch {
	case a.throttled:
		limited := e.rate.rate() > 0
		e.rate.throttled(now)
		if !limited && e.rate.rate() > 0 {
			e.event("throttled", "answered 429: requests now paced")
		}
	case a.accepted:
		limited := e.rate.rate() > 0
		e.rate.accepted(now)
		if limited && e.rate.rate() == 0 {
			e.event("unthrottled", "no 429 for a while: requests no longer paced")
		}
	}
	e.lim.observe(now, limitSample{rtt: now.Sub(p.start), inFlight: e.inflight.n, signal: a.limit})
	e.inflight.remove(p)
	if a.breaker != timedOut {
		e.lastSign = now
		if e.silent {
			e.silent = false
			e.event("answering", "the endpoint answers again")
		}
	}
	e.recordLocked(p.probe, a.breaker)
	e.active--
	e.dispatchLocked()
}

func (e *endpoint) event(what, detail string) {
	if e.onEvent != nil {
		e.onEvent(what, detail)
	}
}

// queued is how many requests wait for the endpoint.
func (e *endpoint) queued() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.waiting.n
}

// PausedError is a delivery not sent because its endpoint asked for a
// pause (429, or 503 with Retry-After); Until is when it should go again.
type PausedError struct{ Until time.Time }

func (e *PausedError) Error() string {
	return "not sent: the endpoint asked for a pause (429 or 503 with Retry-After); deferred until " + e.Until.UTC().Format(time.RFC3339)
}

// BusyError is a delivery not sent because its endpoint has as much as it
// can take within queueHorizon already waiting (or answers nothing at the
// moment), or because its subscription's max_rate allows no more within a
// second (Rate); Until is the turn booked for it.
type BusyError struct {
	Until time.Time
	Rate  bool
}

func (e *BusyError) Error() string {
	if e.Rate {
		return "not sent: the subscription's max_rate is reached; deferred until " + e.Until.UTC().Format(time.RFC3339)
	}
	return "not sent: the endpoint has its fill waiting; deferred until " + e.Until.UTC().Format(time.RFC3339)
}

// endpoints holds one endpoint per origin, found by URL without parsing
// it on every delivery.
type endpoints struct {
	cfg      endpointConfig
	now      func() time.Time
	onChange func(origin string, to circuitState, reason string)
	onEvent  func(origin, what, detail string)

	mu       sync.RWMutex
	byURL    map[string]*endpoint
	byOrigin map[string]*endpoint

	room roomSignal // which endpoint last had room, for all of them
	// shedAt is when windowFull last looked for queues to shed (unix
	// nanoseconds).
	shedAt atomic.Int64
}

// windowFull has each endpoint shed what it holds beyond its room, at
// most every roomRecent/5: a source window is full, so no new delivery
// may come to an endpoint to make it do so itself, and until it does, what
// it holds keeps events from being read.
func (es *endpoints) windowFull() {
	now := es.now()
	t, last := now.UnixNano(), es.shedAt.Load()
	if t-last < int64(roomRecent/5) || !es.shedAt.CompareAndSwap(last, t) {
		return
	}
	es.mu.RLock()
	eps := make([]*endpoint, 0, len(es.byOrigin))
	for _, e := range es.byOrigin {
		eps = append(eps, e)
	}
	es.mu.RUnlock()
	for _, e := range eps {
		e.shed(now)
	}
}

func newEndpoints(cfg endpointConfig, onChange func(string, circuitState, string), onEvent func(origin, what, detail string)) *endpoints {
	return &endpoints{
		cfg: cfg, now: time.Now, onChange: onChange, onEvent: onEvent,
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
		e = newEndpoint(es.cfg, es.now, func(to circuitState, reason string) {
			if es.onChange != nil {
				es.onChange(key, to, reason)
			}
		}, func(what, detail string) {
			if es.onEvent != nil {
				es.onEvent(key, what, detail)
			}
		})
		e.room = &es.room
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
