package delivery

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/unibo/webhookd/config"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// A partner that stops answering holds only its own requests: the healthy
// partner's 200 deliveries all complete while the hung one's are still
// outstanding; the hung one got no more than its concurrency limit at once,
// and once its requests have gone unanswered for a while, further
// deliveries to it are refused at once as BusyError (to be deferred)
// instead of queueing behind them. Nothing sent to it is abandoned: when it
// answers, the requests it held succeed.
func TestHungEndpointDoesNotHoldHealthyOne(t *testing.T) {
	release := make(chan struct{})
	var hungHits atomic.Int64
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hungHits.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hung.Close()
	var healthyHits atomic.Int64
	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { healthyHits.Add(1) }))
	defer healthy.Close()

	cfg := config.Defaults().Delivery
	cfg.Timeout = time.Minute
	cfg.AllowedCIDRs = []string{"127.0.0.0/8"} // httptest servers
	cfg.EndpointConcurrency = 8
	s := NewSender(cfg, zap.NewNop(), nil)
	defer s.Close()

	var hungWG, healthyWG sync.WaitGroup
	var hungOK, hungBusy atomic.Int64
	for range 50 {
		hungWG.Add(1)
		go func() {
			defer hungWG.Done()
			switch res := s.Send(context.Background(), Endpoint{URL: hung.URL}, []byte(`{}`)); {
			case res.OK():
				hungOK.Add(1)
			case errors.As(res.Err, new(*BusyError)):
				hungBusy.Add(1)
			default:
				t.Errorf("a delivery to the hung partner failed: %v", res.Err)
			}
		}()
	}
	for range 200 {
		healthyWG.Add(1)
		go func() {
			defer healthyWG.Done()
			s.Send(context.Background(), Endpoint{URL: healthy.URL}, []byte(`{}`))
		}()
	}
	healthyWG.Wait()
	if healthyHits.Load() != 200 {
		close(release)
		t.Fatalf("healthy partner got %d of 200 while the hung one held its requests", healthyHits.Load())
	}
	for hungHits.Load() < int64(cfg.EndpointConcurrency) {
		time.Sleep(time.Millisecond)
	}
	// Unanswered for 600 ms, 8 requests: a capacity of about 13/s, so the
	// 42 queued are more than two seconds' worth and nothing more may wait.
	time.Sleep(600 * time.Millisecond)
	// A source window is full and the healthy partner, still being sent
	// to, has room: what the hung one holds beyond its capacity is in
	// someone's way.
	s.WindowFull()
	s.Send(context.Background(), Endpoint{URL: healthy.URL}, []byte(`{}`))
	busy := 0
	for range 10 {
		if res := s.Send(context.Background(), Endpoint{URL: hung.URL}, []byte(`{}`)); errors.As(res.Err, new(*BusyError)) {
			busy++
		}
	}
	if n := hungHits.Load(); n != int64(cfg.EndpointConcurrency) {
		t.Errorf("the hung partner got %d requests at once, want its limit of %d", n, cfg.EndpointConcurrency)
	}
	close(release)
	hungWG.Wait()
	if busy != 10 {
		t.Errorf("%d of 10 deliveries to the hung partner refused as busy, want all", busy)
	}
	// The 8 sent waited for their answer however long it took; of the 42
	// queued, those beyond what the endpoint could take within two seconds
	// were deferred as its capacity fell (and would come back at their
	// turns), the rest were sent once it answered. None failed.
	if ok, busy := hungOK.Load(), hungBusy.Load(); ok+busy != 50 || ok < int64(cfg.EndpointConcurrency) || busy == 0 {
		t.Errorf("of the 50 requests sent or queued before the hang was known: %d succeeded once it answered, %d deferred; want 50 in all, at least the %d in flight succeeded and the queue trimmed to what it could take",
			ok, busy, cfg.EndpointConcurrency)
	}
}

type circuitLog struct {
	mu    sync.Mutex
	state map[string]string
}

func (c *circuitLog) Circuit(endpoint string, open bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == nil {
		c.state = map[string]string{}
	}
	c.state[endpoint] = map[bool]string{true: "open", false: "closed"}[open]
}

func (c *circuitLog) get(endpoint string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state[endpoint]
}

// A request waiting for a slot fails as soon as the circuit opens, not when
// a slot frees up; once the circuit has closed again, requests wait again.
func TestWaitingRequestFailsWhenCircuitOpens(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	e := newEndpoint(endpointConfig{ceiling: 1, maxQueue: 10, timeout: 10 * time.Millisecond,
		breaker: config.Breaker{Failures: 1, StallTimeout: time.Hour, StallRequests: 1, Cooldown: time.Second}}, clk.now, nil, nil)
	ctx := context.Background()
	for round := range 2 {
		held, err := e.acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		waited := make(chan error, 1)
		go func() {
			p, err := e.acquire(ctx)
			if err == nil {
				p.done(answer{breaker: succeeded})
			}
			waited <- err
		}()
		select {
		case err := <-waited:
			t.Fatalf("round %d: did not wait for the slot: %v", round, err)
		case <-time.After(50 * time.Millisecond):
		}
		e.mu.Lock()
		e.openLocked("test")
		e.mu.Unlock()
		select {
		case err := <-waited:
			if !errors.Is(err, ErrCircuitOpen) {
				t.Fatalf("round %d: waiting request got %v", round, err)
			}
		case <-time.After(time.Second):
			t.Fatalf("round %d: waiting request not woken by the circuit opening", round)
		}
		held.done(answer{breaker: failed})
		// Cool down, then a successful probe closes the circuit.
		clk.add(2 * time.Second)
		probe, err := e.acquire(ctx)
		if err != nil || !probe.probe {
			t.Fatalf("round %d: probe %v %v", round, probe, err)
		}
		probe.done(answer{breaker: succeeded})
		if e.State() != closed {
			t.Fatalf("round %d: state %s after a successful probe", round, e.State())
		}
	}
}

// A waiter that gives up (its context ends) leaves the queue, and slots are
// neither lost nor doubled whether or not it was handed one meanwhile.
func TestWaiterGivingUpKeepsSlotsBalanced(t *testing.T) {
	e := newEndpoint(endpointConfig{ceiling: 2, maxQueue: 1000, timeout: 10 * time.Millisecond,
		breaker: config.Breaker{Failures: 100, StallTimeout: time.Hour, StallRequests: 100, Cooldown: time.Second}}, time.Now, nil, nil)
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i%5)*100*time.Microsecond)
			defer cancel()
			if p, err := e.acquire(ctx); err == nil {
				time.Sleep(50 * time.Microsecond)
				p.done(answer{breaker: succeeded})
			}
		}()
	}
	wg.Wait()
	e.mu.Lock()
	active, queued, inflight := e.active, e.waiting.head != nil, e.inflight.n
	e.mu.Unlock()
	if active != 0 || queued || inflight != 0 {
		t.Fatalf("after every request: %d slots held, waiters queued %v, %d in flight", active, queued, inflight)
	}
	a, err := e.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := e.acquire(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("third request with 2 slots: %v", err)
	}
	a.done(answer{breaker: succeeded})
	b.done(answer{breaker: succeeded})
}

// A healthy partner's straggler does not shrink its queue: one request
// unanswered for a second among seven fresh ones, on a partner that
// answers in 50 ms, leaves room for two seconds of its usual pace (8 / 50
// ms × 2 s = 320 waiting). When every request it holds has gone unanswered
// for a second, the room falls to two seconds at 8 per second: 16.
func TestQueueRoomFollowsTheTypicalRequestNotTheOldest(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	e := newEndpoint(endpointConfig{ceiling: 8, maxQueue: 1000, timeout: time.Minute,
		breaker: config.Breaker{Failures: 100, StallTimeout: time.Hour, StallRequests: 100, Cooldown: time.Second}}, clk.now, nil, nil)
	ctx := context.Background()
	for range limitRTTs {
		p, err := e.acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		clk.add(50 * time.Millisecond)
		p.done(answer{breaker: succeeded, accepted: true})
	}
	room := func() int {
		e.mu.Lock()
		defer e.mu.Unlock()
		return e.queueCapLocked(clk.now())
	}
	if _, err := e.acquire(ctx); err != nil { // the straggler
		t.Fatal(err)
	}
	clk.add(time.Second)
	for range 7 {
		if _, err := e.acquire(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := room(); got != 320 {
		t.Errorf("with one request of eight unanswered for 1 s, room for %d waiting; want 320 (two seconds at 8 per 50 ms)", got)
	}
	clk.add(time.Second)
	if got := room(); got > 16 {
		t.Errorf("with all eight unanswered for 1 s or more, room for %d waiting; want at most 16 (two seconds at 8 per second or less)", got)
	}
}

// A partner that always answers after 6 s is slow, not silent: with a
// stall_timeout of 5 s it counts as silent only when it has left its
// requests unanswered for twice its usual round trip (12 s). A partner
// known to answer in 50 ms goes silent at the stall_timeout, as before.
func TestSilenceAllowsForAPartnersUsualPace(t *testing.T) {
	for _, tc := range []struct {
		name               string
		usual              time.Duration
		notYet, silentFrom time.Duration
	}{
		{"slow partner", 6 * time.Second, 11 * time.Second, 12 * time.Second},
		{"fast partner", 50 * time.Millisecond, 4 * time.Second, 5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := &clock{t: time.Unix(1000, 0)}
			e := newEndpoint(endpointConfig{ceiling: 8, maxQueue: 100, timeout: 30 * time.Second,
				breaker: config.Breaker{Failures: 100, StallTimeout: 5 * time.Second, StallRequests: 1, Cooldown: time.Second}}, clk.now, nil, nil)
			ctx := context.Background()
			for range limitRTTs {
				p, err := e.acquire(ctx)
				if err != nil {
					t.Fatal(err)
				}
				clk.add(tc.usual)
				p.done(answer{breaker: succeeded, accepted: true})
			}
			p, err := e.acquire(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer p.done(answer{breaker: succeeded, accepted: true})
			clk.add(tc.notYet)
			e.watch()
			if e.status("x").Silent {
				t.Fatalf("silent after %v unanswered", tc.notYet)
			}
			clk.add(tc.silentFrom - tc.notYet)
			e.watch()
			if !e.status("x").Silent {
				t.Fatalf("not silent after %v unanswered", tc.silentFrom)
			}
		})
	}
}

// An endpoint holding more than two seconds of its capacity defers the
// excess only while another endpoint has room: when every endpoint sent to
// is as busy (a backlog on a machine short of CPU), deferring would help
// no one, and costs a trip through the retry tiers. A full source window
// sheds what waits beyond the room at once: no new delivery may come to
// the endpoint to do it.
func TestBusyEndpointDefersOnlyWhileAnotherHasRoom(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	cfg := endpointConfig{ceiling: 1, maxQueue: 10, timeout: time.Minute,
		breaker: config.Breaker{Failures: 100, StallTimeout: time.Hour, StallRequests: 100, Cooldown: time.Second}}
	es := newEndpoints(cfg, nil, nil)
	es.now = clk.now
	slow, other := es.get("http://slow.example"), es.get("http://other.example")
	ctx := context.Background()
	held, err := slow.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer held.done(answer{breaker: succeeded})
	clk.add(10 * time.Second) // one request in 10 s: two seconds hold none
	waited := make(chan error, 2)
	wait := func() {
		go func() {
			p, err := slow.acquire(ctx)
			if err == nil {
				p.done(answer{breaker: succeeded})
			}
			waited <- err
		}()
	}
	kept := func(why string) {
		t.Helper()
		select {
		case err := <-waited:
			t.Fatalf("%s, a delivery was not kept waiting: %v", why, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	deferred := func(why string) {
		t.Helper()
		select {
		case err := <-waited:
			if !errors.As(err, new(*BusyError)) {
				t.Fatalf("%s, a waiting delivery got %v, want a BusyError (deferred)", why, err)
			}
		case <-time.After(time.Second):
			t.Fatalf("%s, a waiting delivery was kept", why)
		}
	}
	otherHasRoom := func() {
		o, err := other.acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		o.done(answer{breaker: succeeded})
	}
	wait()
	kept("with no other endpoint having room")
	otherHasRoom()
	if _, err := slow.acquire(ctx); !errors.As(err, new(*BusyError)) {
		t.Fatalf("with another endpoint having room, a delivery beyond the capacity got %v, want a BusyError", err)
	}
	deferred("once another endpoint had room and a delivery came")
	clk.add(roomRecent) // the other's room is old news
	wait()
	kept(fmt.Sprintf("once the other endpoint's room was %v old", roomRecent))
	otherHasRoom()
	kept("with another endpoint having room again but no delivery coming")
	es.windowFull()
	deferred("once a source window was full")
}

// An endpoint going silent takes no more waiters, and keeps those it has
// while no other endpoint has room: a partner slower than the stall
// timeout sends them the moment it answers. Once another endpoint has
// room, they are deferred.
func TestSilentEndpointKeepsItsWaitersOnlyWhileNoOneElseHasRoom(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	cfg := endpointConfig{ceiling: 1, maxQueue: 10, timeout: time.Minute,
		breaker: config.Breaker{Failures: 100, StallTimeout: 5 * time.Second, StallRequests: 1, Cooldown: time.Second}}
	es := newEndpoints(cfg, nil, nil)
	es.now = clk.now
	slow, other := es.get("http://slow.example"), es.get("http://other.example")
	ctx := context.Background()
	held, err := slow.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() {
		p, err := slow.acquire(ctx)
		if err == nil {
			p.done(answer{breaker: succeeded})
		}
		waited <- err
	}()
	for slow.queued() == 0 {
		time.Sleep(time.Millisecond)
	}
	clk.add(6 * time.Second)
	slow.watch()
	if !slow.status("x").Silent {
		t.Fatal("not silent after 6 s unanswered")
	}
	if _, err := slow.acquire(ctx); !errors.As(err, new(*BusyError)) {
		t.Fatalf("a new delivery to a silent endpoint got %v, want a BusyError", err)
	}
	select {
	case err := <-waited:
		t.Fatalf("with no other endpoint having room, the waiting delivery left: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	o, err := other.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	o.done(answer{breaker: succeeded})
	if _, err := slow.acquire(ctx); !errors.As(err, new(*BusyError)) {
		t.Fatalf("a new delivery to a silent endpoint got %v, want a BusyError", err)
	}
	select {
	case err := <-waited:
		if !errors.As(err, new(*BusyError)) {
			t.Fatalf("the waiting delivery got %v, want a BusyError (deferred)", err)
		}
	case <-time.After(time.Second):
		t.Fatal("the waiting delivery was kept once another endpoint had room")
	}
	held.done(answer{breaker: succeeded})
}
