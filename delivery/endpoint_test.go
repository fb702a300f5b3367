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
				p.done(succeeded, 0)
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
		held.done(failed, 0)
		// Cool down, then a successful probe closes the circuit.
		clk.add(2 * time.Second)
		probe, err := e.acquire(ctx)
		if err != nil || !probe.probe {
			t.Fatalf("round %d: probe %v %v", round, probe, err)
		}
		probe.done(succeeded, 0)
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
				p.done(succeeded, 0)
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
	a.done(succeeded, 0)
	b.done(succeeded, 0)
}
