package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// receiverKind is how a receiver answers.
type receiverKind int

const (
	fast      receiverKind = iota // 200 at once; holds requests as dead does while hang() is on
	delayed                       // time.Sleep(delay), then 200
	dead                          // reads the request, never answers until closed
	limited                       // 429 + Retry-After: 1 beyond limitPerSecond, 200 otherwise
	refusing                      // 503 + Retry-After: 3600, always
	failFirst                     // 500 to the first request of each id, 200 after
)

// limitPerSecond is the rate a limited receiver accepts: a token bucket of
// that many tokens a second holding at most a second's worth.
const limitPerSecond = 1000

// receiver is one webhook endpoint on its own 127.0.0.1 port: webhookd limits
// concurrency per scheme://host:port, so every receiver is a separate
// endpoint. It counts what it answered into a tally the scenario installs.
type receiver struct {
	name  string
	kind  receiverKind
	delay time.Duration
	clock *clock

	ln       net.Listener
	srv      *http.Server
	serveErr chan error
	tally    atomic.Pointer[tally]
	held     atomic.Int64 // requests a dead (or hanging) receiver is sitting on
	hanging  atomic.Bool
	bucket   tokenBucket
	tls      *tlsCounts // nil for plain HTTP
	quit     chan struct{}
	quitOnce sync.Once
	handlers sync.WaitGroup
}

// clock turns instants into nanoseconds since the bench started, on the
// monotonic clock, so windows measured across goroutines compare exactly.
type clock struct{ base time.Time }

func (c *clock) now() int64 { return int64(time.Since(c.base)) }

// startReceiver listens on a port of its own; with tc it serves HTTPS
// (HTTP/2 offered when tc.h2) and counts connections and handshakes.
func startReceiver(name string, kind receiverKind, delay time.Duration, c *clock, tc *receiverTLS) (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("receiver %s: %w", name, err)
	}
	r := &receiver{name: name, kind: kind, delay: delay, clock: c, ln: ln,
		serveErr: make(chan error, 1), quit: make(chan struct{})}
	r.tally.Store(newTally(0, false))
	r.bucket = tokenBucket{perSecond: limitPerSecond, tokens: limitPerSecond}
	// Keep-alive is on by default; no read or write timeouts, so the dead
	// receiver can hold requests for as long as the scenario lasts.
	r.srv = &http.Server{Handler: r, IdleTimeout: 2 * time.Minute}
	if tc == nil {
		go func() { r.serveErr <- r.srv.Serve(ln) }()
		return r, nil
	}
	r.tls = &tlsCounts{}
	cfg := tc.serverConfig(r.tls)
	r.srv.TLSConfig = cfg
	r.srv.Protocols = new(http.Protocols)
	r.srv.Protocols.SetHTTP1(true)
	r.srv.Protocols.SetHTTP2(tc.h2)
	r.srv.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			r.tls.conns.Add(1)
		}
	}
	go func() { r.serveErr <- r.srv.ServeTLS(ln, "", "") }()
	return r, nil
}

// URL is what a subscription points at.
func (r *receiver) URL() string {
	scheme := "http"
	if r.tls != nil {
		scheme = "https"
	}
	return scheme + "://" + r.ln.Addr().String() + "/webhooks/" + r.name
}

// hang makes a fast receiver hold every request from now on, as dead does.
func (r *receiver) hang() { r.hanging.Store(true) }

// tokenBucket admits perSecond requests a second, at most a second's worth
// at once.
type tokenBucket struct {
	mu        sync.Mutex
	perSecond float64
	tokens    float64
	at        time.Time
}

func (b *tokenBucket) take(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.at.IsZero() {
		b.tokens = min(b.perSecond, b.tokens+now.Sub(b.at).Seconds()*b.perSecond)
	}
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// reset installs a fresh tally: ids 0..ids-1 are checked for duplicates
// (ids 0 turns the check off), and latencies are kept when withLatency.
func (r *receiver) reset(ids int, withLatency bool) *tally {
	t := newTally(ids, withLatency)
	r.tally.Store(t)
	r.held.Store(0)
	return t
}

func (r *receiver) current() *tally { return r.tally.Load() }

// release lets a dead receiver's held requests go (their connections are
// closed without an answer) without stopping the server.
func (r *receiver) release() { r.quitOnce.Do(func() { close(r.quit) }) }

// close stops the server and waits for every handler to return.
func (r *receiver) close() error {
	r.release()
	err := r.srv.Close()
	done := make(chan struct{})
	go func() { r.handlers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		return fmt.Errorf("receiver %s: handlers still running 5s after close", r.name)
	}
	if serr := <-r.serveErr; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return errors.Join(err, serr)
	}
	return err
}

var bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.handlers.Add(1)
	defer r.handlers.Done()
	t := r.tally.Load()
	arrived := r.clock.now()
	arrivedWall := time.Now().UnixNano()
	t.first.CompareAndSwap(0, arrived)

	bp := bodyPool.Get().(*[]byte)
	buf := bytes.NewBuffer((*bp)[:0])
	_, err := io.Copy(buf, req.Body)
	seq, sent, ok := parseRequestID(buf.Bytes())
	*bp = buf.Bytes()
	bodyPool.Put(bp)
	if err != nil {
		t.readErrs.Add(1)
		return
	}
	t.requests.Add(1)
	if req.ProtoMajor == 2 {
		t.h2.Add(1)
	}

	switch {
	case r.kind == dead || r.kind == fast && r.hanging.Load():
		r.held.Add(1)
		select {
		case <-req.Context().Done():
		case <-r.quit:
		}
		// Drop the connection without an answer, as a hung partner would.
		panic(http.ErrAbortHandler)
	case r.kind == limited && !r.bucket.take(time.Now()):
		w.Header().Set("Retry-After", "1")
		t.refuse(w, http.StatusTooManyRequests)
		return
	case r.kind == refusing:
		w.Header().Set("Retry-After", "3600")
		t.refuse(w, http.StatusServiceUnavailable)
		return
	case r.kind == failFirst:
		if t.arrive(seq, ok, arrivedWall) == 1 {
			t.refuse(w, http.StatusInternalServerError)
			return
		}
	case r.kind == delayed:
		timer := time.NewTimer(r.delay)
		select {
		case <-timer.C:
		case <-r.quit:
			timer.Stop()
			panic(http.ErrAbortHandler)
		}
	}
	w.WriteHeader(http.StatusOK)
	t.record(seq, ok, sent, arrivedWall, r.clock.now())
}

// tally counts the requests one receiver answered 200 during one phase,
// and every request it was sent.
type tally struct {
	requests atomic.Int64 // requests read, whatever the answer
	refused  atomic.Int64 // answered with an error status (429, 500, 503)
	h2       atomic.Int64 // requests over HTTP/2
	answered atomic.Int64 // 200s written, duplicates included
	unique   atomic.Int64 // distinct request ids answered
	dups     atomic.Int64 // answers for an id already answered
	unparsed atomic.Int64 // body without a bench request id, or one out of range
	readErrs atomic.Int64
	first    atomic.Int64 // clock.now() at the first arrival, 0 before
	last     atomic.Int64 // clock.now() at the latest answer
	seen     []atomic.Uint64
	lat      *latencies
	// arrivals (failFirst receivers): wall nanos of each id's first two
	// arrivals, and how many there were.
	arrMu    sync.Mutex
	arrivals map[int64]*arrival
}

type arrival struct {
	n             int
	first, second int64
}

func newTally(ids int, withLatency bool) *tally {
	t := &tally{seen: make([]atomic.Uint64, (ids+63)/64), arrivals: map[int64]*arrival{}}
	if withLatency {
		t.lat = &latencies{}
	}
	return t
}

// refuse answers status and counts it.
func (t *tally) refuse(w http.ResponseWriter, status int) {
	t.refused.Add(1)
	w.WriteHeader(status)
}

// arrive notes an arrival of id seq at wall time at and returns how many
// arrivals the id has had, this one included (0 for an unrecognised body).
func (t *tally) arrive(seq int64, ok bool, at int64) int {
	if !ok {
		return 0
	}
	t.arrMu.Lock()
	defer t.arrMu.Unlock()
	a := t.arrivals[seq]
	if a == nil {
		a = &arrival{first: at}
		t.arrivals[seq] = a
	}
	a.n++
	if a.n == 2 {
		a.second = at
	}
	return a.n
}

// arrivalsByID is a copy of the arrivals noted.
func (t *tally) arrivalsByID() map[int64]arrival {
	t.arrMu.Lock()
	defer t.arrMu.Unlock()
	out := make(map[int64]arrival, len(t.arrivals))
	for id, a := range t.arrivals {
		out[id] = *a
	}
	return out
}

func (t *tally) record(seq int64, ok bool, sentWall, arrivedWall, done int64) {
	t.answered.Add(1)
	for { // last = max(last, done): handlers finish out of order
		prev := t.last.Load()
		if done <= prev || t.last.CompareAndSwap(prev, done) {
			break
		}
	}
	switch {
	case len(t.seen) == 0:
		t.unique.Add(1)
	case !ok || seq < 0 || seq >= int64(len(t.seen))*64:
		t.unparsed.Add(1)
	default:
		bit := uint64(1) << (seq % 64)
		if t.seen[seq/64].Or(bit)&bit != 0 {
			t.dups.Add(1)
		} else {
			t.unique.Add(1)
		}
	}
	if t.lat != nil && ok && sentWall > 0 {
		t.lat.add(sentWall, arrivedWall-sentWall)
	}
}

// latencies keeps every arrival−send sample of a phase with its send time.
type latencies struct {
	mu sync.Mutex
	ts []timedSample
}

func (l *latencies) add(sentWall, d int64) {
	l.mu.Lock()
	l.ts = append(l.ts, timedSample{at: sentWall, v: d})
	l.mu.Unlock()
}

// samples are the latencies alone.
func (l *latencies) samples() []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]int64, len(l.ts))
	for i, s := range l.ts {
		out[i] = s.v
	}
	return out
}

// timed are the latencies with their send times (wall nanos).
func (l *latencies) timed() []timedSample {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]timedSample(nil), l.ts...)
}

var requestIDField = []byte(`"request_id"`)

// parseRequestID finds the payload's request_id, "bench-<seq>-<send unix
// nanos>", and returns both numbers. It accepts webhookd's rendering
// (`"request_id": "..."`) and the compact one.
func parseRequestID(body []byte) (seq, sent int64, ok bool) {
	i := bytes.Index(body, requestIDField)
	if i < 0 {
		return 0, 0, false
	}
	rest := body[i+len(requestIDField):]
	q := bytes.IndexByte(rest, '"')
	if q < 0 {
		return 0, 0, false
	}
	rest = rest[q+1:]
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return 0, 0, false
	}
	id, found := bytes.CutPrefix(rest[:end], []byte(requestIDPrefix))
	if !found {
		return 0, 0, false
	}
	dash := bytes.IndexByte(id, '-')
	if dash < 0 {
		return 0, 0, false
	}
	seq, ok1 := atoi(id[:dash])
	sent, ok2 := atoi(id[dash+1:])
	return seq, sent, ok1 && ok2
}

func atoi(b []byte) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

type atomicInt = atomic.Int64

// phase sums the tallies of the receivers one measurement watches.
type phase []*tally

func (p phase) unique() int64 {
	var n int64
	for _, t := range p {
		n += t.unique.Load()
	}
	return n
}

func (p phase) sum(f func(*tally) *atomicInt) int64 {
	var n int64
	for _, t := range p {
		n += f(t).Load()
	}
	return n
}

// window is from the first request's arrival at any of the receivers to
// the last answer any of them wrote.
func (p phase) window() (first, last int64) {
	for _, t := range p {
		if f := t.first.Load(); f != 0 && (first == 0 || f < first) {
			first = f
		}
		if l := t.last.Load(); l > last {
			last = l
		}
	}
	return first, last
}

// rate is unique deliveries per second over the window.
func (p phase) rate() float64 {
	first, last := p.window()
	if first == 0 || last <= first {
		return 0
	}
	return float64(p.unique()) / time.Duration(last-first).Seconds()
}

// waitFirst blocks until some receiver of the phase saw a request.
func (p phase) waitFirst(ctx context.Context) error {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if f, _ := p.window(); f != 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}
