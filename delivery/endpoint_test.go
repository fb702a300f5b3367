package delivery

import (
	"context"
	"errors"
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

func TestBreakerOpensAfterConsecutiveFailuresThenProbes(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	var changes []string
	e := newEndpoint(4, config.Breaker{Failures: 3, StallTimeout: time.Minute, Cooldown: 10 * time.Second}, clk.now,
		func(to circuitState, _ string) { changes = append(changes, to.String()) })
	ctx := context.Background()
	do := func(o outcome) error {
		p, err := e.acquire(ctx)
		if err != nil {
			return err
		}
		p.done(o)
		return nil
	}

	for i := 0; i < 2; i++ {
		_ = do(failed)
	}
	_ = do(succeeded) // a success resets the count
	_ = do(neutral)   // a 4xx says nothing
	for i := 0; i < 2; i++ {
		_ = do(failed)
	}
	if e.State() != closed {
		t.Fatal("opened before 3 consecutive failures")
	}
	_ = do(failed)
	if e.State() != open {
		t.Fatal("not open after 3 consecutive failures")
	}
	if err := do(succeeded); !errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("open circuit admitted a request: %v", err)
	}

	clk.add(10 * time.Second)
	probe, err := e.acquire(ctx)
	if err != nil {
		t.Fatalf("no probe after the cool-down: %v", err)
	}
	if _, err := e.acquire(ctx); !errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("a second request got through while probing: %v", err)
	}
	probe.done(failed)
	if e.State() != open {
		t.Fatal("failed probe did not reopen")
	}
	clk.add(10 * time.Second)
	if err := do(succeeded); err != nil {
		t.Fatal(err)
	}
	if e.State() != closed {
		t.Fatal("successful probe did not close")
	}
	want := "open,half-open,open,half-open,closed"
	if got := join(changes); got != want {
		t.Fatalf("transitions %s, want %s", got, want)
	}
}

func join(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ","
		}
		out += x
	}
	return out
}

func TestUnresponsiveEndpointOpensAndAbandonsOutstanding(t *testing.T) {
	e := newEndpoint(100, config.Breaker{Failures: 100, StallTimeout: 150 * time.Millisecond, StallRequests: 2, Cooldown: time.Minute}, time.Now, nil)
	ctx := context.Background()
	a, _ := e.acquire(ctx)
	ctxA, cancelA := context.WithCancel(ctx)
	a.bind(cancelA)
	b, _ := e.acquire(ctx)

	select {
	case <-ctxA.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("outstanding request not abandoned by the stall watchdog")
	}
	if !a.wasAbandoned() || !b.wasAbandoned() || e.State() != open {
		t.Fatalf("abandoned %v %v, state %s", a.wasAbandoned(), b.wasAbandoned(), e.State())
	}
	ctxB, cancelB := context.WithCancel(ctx)
	b.bind(cancelB) // bound after the stall: cancelled at once
	if ctxB.Err() == nil {
		t.Fatal("a request bound to an abandoned permit was not cancelled")
	}
	a.done(failed)
	b.done(failed)
	if _, err := e.acquire(ctx); !errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("circuit not open after the stall: %v", err)
	}
}

// A quiet partner that is merely slow (fewer outstanding requests than
// stall_requests) is left to the delivery timeout.
func TestSlowQuietEndpointIsNotJudgedUnresponsive(t *testing.T) {
	e := newEndpoint(100, config.Breaker{Failures: 100, StallTimeout: 50 * time.Millisecond, StallRequests: 2, Cooldown: time.Minute}, time.Now, nil)
	p, _ := e.acquire(context.Background())
	time.Sleep(200 * time.Millisecond)
	if p.wasAbandoned() || e.State() != closed {
		t.Fatalf("one slow request tripped the breaker: state %s", e.State())
	}
	p.done(succeeded)
}

// A partner that never answers costs the healthy partner nothing once its
// circuit opens: its deliveries fail fast instead of each waiting for the
// (here 30 s) timeout.
func TestDeadEndpointDoesNotHoldHealthyOne(t *testing.T) {
	release := make(chan struct{})
	dead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer dead.Close()
	defer close(release)
	var healthyHits atomic.Int64
	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { healthyHits.Add(1) }))
	defer healthy.Close()

	cfg := config.Defaults().Delivery
	cfg.Timeout = 30 * time.Second
	cfg.AllowedCIDRs = []string{"127.0.0.0/8"} // httptest servers
	cfg.EndpointConcurrency = 8
	cfg.Breaker.StallTimeout = 200 * time.Millisecond
	cfg.Breaker.StallRequests = 4
	circuits := &circuitLog{}
	s := NewSender(cfg, zap.NewNop(), circuits)
	defer s.Close()

	start := time.Now()
	var wg sync.WaitGroup
	var deadFailed atomic.Int64
	for i := 0; i < 200; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if res := s.Send(context.Background(), Endpoint{URL: dead.URL}, []byte(`{}`)); !res.OK() {
				deadFailed.Add(1)
			}
		}()
		go func() {
			defer wg.Done()
			s.Send(context.Background(), Endpoint{URL: healthy.URL}, []byte(`{}`))
		}()
	}
	wg.Wait()
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("deliveries took %s beside a dead endpoint", took)
	}
	if healthyHits.Load() != 200 || deadFailed.Load() != 200 {
		t.Fatalf("healthy %d/200 delivered, dead %d/200 failed", healthyHits.Load(), deadFailed.Load())
	}
	if got := circuits.get(dead.URL); got != "open" {
		t.Fatalf("dead endpoint's circuit recorded as %q, want open", got)
	}
	if got := circuits.get(healthy.URL); got != "" {
		t.Fatalf("healthy endpoint's circuit recorded as %q", got)
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
	e := newEndpoint(1, config.Breaker{Failures: 1, StallTimeout: time.Hour, StallRequests: 1, Cooldown: time.Second}, clk.now, nil)
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
				p.done(succeeded)
			}
			waited <- err
		}()
		select {
		case err := <-waited:
			t.Fatalf("round %d: did not wait for the slot: %v", round, err)
		case <-time.After(50 * time.Millisecond):
		}
		e.mu.Lock()
		e.tripLocked()
		e.mu.Unlock()
		select {
		case err := <-waited:
			if !errors.Is(err, ErrCircuitOpen) {
				t.Fatalf("round %d: waiting request got %v", round, err)
			}
		case <-time.After(time.Second):
			t.Fatalf("round %d: waiting request not woken by the circuit opening", round)
		}
		held.done(failed)
		// Cool down, then a successful probe closes the circuit.
		clk.add(2 * time.Second)
		probe, err := e.acquire(ctx)
		if err != nil || !probe.probe {
			t.Fatalf("round %d: probe %v %v", round, probe, err)
		}
		probe.done(succeeded)
		if e.State() != closed {
			t.Fatalf("round %d: state %s after a successful probe", round, e.State())
		}
	}
}

// A waiter that gives up (its context ends) leaves the queue, and slots are
// neither lost nor doubled whether or not it was handed one meanwhile.
func TestWaiterGivingUpKeepsSlotsBalanced(t *testing.T) {
	e := newEndpoint(2, config.Breaker{Failures: 100, StallTimeout: time.Hour, StallRequests: 100, Cooldown: time.Second}, time.Now, nil)
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i%5)*100*time.Microsecond)
			defer cancel()
			if p, err := e.acquire(ctx); err == nil {
				time.Sleep(50 * time.Microsecond)
				p.done(succeeded)
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
	a.done(succeeded)
	b.done(succeeded)
}
