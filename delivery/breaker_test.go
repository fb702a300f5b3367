package delivery

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/unibo/webhookd/config"
)

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
	if got := strings.Join(changes, ","); got != want {
		t.Fatalf("transitions %s, want %s", got, want)
	}
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
