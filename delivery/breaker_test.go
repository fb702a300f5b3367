package delivery

import (
	"context"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/unibo/webhookd/config"
)

func TestBreakerOpensAfterConsecutiveFailuresThenProbes(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	var changes []string
	e := newEndpoint(endpointConfig{ceiling: 4, maxQueue: 100, timeout: time.Second,
		breaker: config.Breaker{Failures: 3, StallTimeout: time.Minute, Cooldown: 10 * time.Second}}, clk.now,
		func(to circuitState, _ string) { changes = append(changes, to.String()) }, nil)
	ctx := context.Background()
	do := func(o outcome) error {
		p, err := e.acquire(ctx)
		if err != nil {
			return err
		}
		p.done(answer{breaker: o})
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
	probe.done(answer{breaker: failed})
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

// An endpoint that answers none of its outstanding requests for
// stall_timeout is silent: what waits for it is deferred (BusyError), and
// nothing more is queued for it, but its outstanding requests are neither
// cancelled nor counted against it, and its circuit stays closed. Its first
// answer ends the silence.
func TestSilentEndpointDefersWhatWaitsButKeepsItsRequests(t *testing.T) {
	var events []string
	var mu sync.Mutex
	e := newEndpoint(endpointConfig{ceiling: 2, maxQueue: 100, timeout: 10 * time.Millisecond,
		breaker: config.Breaker{Failures: 1, StallTimeout: 100 * time.Millisecond, StallRequests: 2, Cooldown: time.Minute}},
		time.Now, nil, func(what, _ string) { mu.Lock(); events = append(events, what); mu.Unlock() })
	ctx := context.Background()
	a, errA := e.acquire(ctx)
	b, errB := e.acquire(ctx)
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	waited := make(chan error, 1)
	go func() {
		_, err := e.acquire(ctx)
		waited <- err
	}()
	var busy *BusyError
	select {
	case err := <-waited:
		if !errors.As(err, &busy) {
			t.Fatalf("the waiting request got %v, want a BusyError once the endpoint went silent", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting request was still waiting behind a silent endpoint")
	}
	if _, err := e.acquire(ctx); !errors.As(err, &busy) {
		t.Fatalf("a new request to a silent endpoint got %v, want a BusyError", err)
	}
	if e.State() != closed {
		t.Fatalf("circuit %s: silence alone must not open it", e.State())
	}
	a.done(answer{breaker: succeeded, accepted: true, limit: limitOK})
	b.done(answer{breaker: succeeded, accepted: true, limit: limitOK})
	p, err := e.acquire(ctx)
	if err != nil {
		t.Fatalf("after it answered: %v", err)
	}
	p.done(answer{breaker: succeeded, accepted: true})
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(events, ","); got != "silent,answering" {
		t.Fatalf("events %q, want silent,answering", got)
	}
}

// A quiet partner that is merely slow (fewer outstanding requests than
// stall_requests) is not silent.
func TestSlowQuietEndpointIsNotJudgedSilent(t *testing.T) {
	e := newEndpoint(endpointConfig{ceiling: 100, maxQueue: 100, timeout: time.Second,
		breaker: config.Breaker{Failures: 100, StallTimeout: 50 * time.Millisecond, StallRequests: 2, Cooldown: time.Minute}}, time.Now, nil, nil)
	p, _ := e.acquire(context.Background())
	time.Sleep(200 * time.Millisecond)
	e.mu.Lock()
	silent := e.silent
	e.mu.Unlock()
	if silent || e.State() != closed {
		t.Fatalf("one slow request made the endpoint silent (%v) or opened it (%s)", silent, e.State())
	}
	p.done(answer{breaker: succeeded})
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
