package delivery

import (
	"context"
	"errors"
	"regexp"
	"strconv"
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
		p.done(o, 0)
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
	probe.done(failed, 0)
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
	a.done(failed, 0)
	b.done(failed, 0)
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
	p.done(succeeded, 0)
}

// delivery.breaker.failures' help lists the answers that count towards
// opening a circuit: exactly those classify counts.
func TestBreakerFailuresHelpNamesTheAnswersThatCount(t *testing.T) {
	var help string
	for _, o := range config.Options {
		if o.Key == "delivery.breaker.failures" {
			help = o.Help
		}
	}
	counted, _, ok := strings.Cut(help, " answers count;")
	if !ok {
		t.Fatalf("the help of delivery.breaker.failures says no \"... answers count;\": %q", help)
	}
	named := map[int]bool{}
	for _, code := range regexp.MustCompile(`\b[1-5](?:\d\d|xx)\b`).FindAllString(counted, -1) {
		if strings.HasSuffix(code, "xx") {
			base := int(code[0]-'0') * 100
			for s := base; s < base+100; s++ {
				named[s] = true
			}
			continue
		}
		n, _ := strconv.Atoi(code)
		named[n] = true
	}
	for status := 100; status < 600; status++ {
		if status >= 200 && status < 300 {
			continue
		}
		counts := classify(context.Background(), Result{Status: status, Err: &StatusError{Status: status}}) == failed
		if counts != named[status] {
			t.Errorf("a %d answer counts: %v; the help of delivery.breaker.failures (%q) says %v", status, counts, help, named[status])
		}
	}
	if classify(context.Background(), Result{Err: errors.New("connection refused")}) != failed || !strings.Contains(help, "connection errors") {
		t.Errorf("connection errors: the help %q and classify disagree", help)
	}
	if classify(context.Background(), Result{Err: ErrTimeout}) != timedOut || !strings.Contains(help, "timeouts") {
		t.Errorf("timeouts: the help %q and classify disagree", help)
	}
}
