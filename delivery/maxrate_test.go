package delivery

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A subscription's max_rate lets through what its bucket holds, keeps in
// memory only what is due within a second, and books the rest at the rate's
// turns, one after another, instead of letting it all come back at once.
func TestMaxRateWaitsUpToASecondThenDefersAtItsTurns(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	now := t0
	r := newSubscriptionRates(func() time.Time { return now })
	const rate = 20.0
	var waits []time.Duration
	var booked []time.Time
	for range 40 {
		wait, err := r.book("sub-1", rate)
		var busy *BusyError
		switch {
		case err == nil:
			waits = append(waits, wait)
		case errors.As(err, &busy) && busy.Rate:
			booked = append(booked, busy.Until)
		default:
			t.Fatalf("book: %v", err)
		}
	}
	// One token in the bucket (a twentieth of a second's worth, at least
	// one), then 20 more due within the second, each 1/20 s after the last.
	if len(waits) != 21 || len(booked) != 19 {
		t.Fatalf("sent %d, deferred %d; want 21 and 19", len(waits), len(booked))
	}
	for i, w := range waits {
		if want := time.Duration(i) * 50 * time.Millisecond; w != want {
			t.Errorf("delivery %d waits %s for its token, want %s", i, w, want)
		}
	}
	if first := booked[0].Sub(t0); first < time.Second {
		t.Errorf("first deferral booked %s after now, want at least the shortest tier (1 s)", first)
	}
	for i := 1; i < len(booked); i++ {
		if gap := booked[i].Sub(booked[i-1]); gap != 50*time.Millisecond {
			t.Errorf("deferrals %d and %d booked %s apart, want 1/20 s", i-1, i, gap)
		}
	}
	// Two seconds on, the bucket has refilled what it holds: one token, no wait.
	now = t0.Add(2 * time.Second)
	if wait, err := r.book("sub-1", rate); err != nil || wait != 0 {
		t.Errorf("after 2 s: wait %s, err %v; want a token at once", wait, err)
	}
	// Another subscription has a bucket of its own; no max_rate, no cap.
	if wait, err := r.book("sub-2", rate); err != nil || wait != 0 {
		t.Errorf("another subscription: wait %s, err %v", wait, err)
	}
	for range 100 {
		if wait, err := r.book("sub-3", 0); err != nil || wait != 0 {
			t.Fatalf("no max_rate: wait %s, err %v", wait, err)
		}
	}
}

// A changed max_rate applies from the next delivery on.
func TestMaxRateChangeAppliesAtOnce(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	r := newSubscriptionRates(func() time.Time { return t0 })
	for range 3 {
		if _, err := r.book("s", 2); err != nil { // 1 token, then 2 booked (0.5 s, 1 s)
			t.Fatal(err)
		}
	}
	if _, err := r.book("s", 2); err == nil {
		t.Fatal("a fourth delivery at 2/s within the second was not deferred")
	}
	// Raised to 1,000/s: the bucket is refilled at the new rate from now.
	if wait, err := r.book("s", 1000); err != nil || wait > time.Second {
		t.Errorf("after raising max_rate: wait %s, err %v", wait, err)
	}
}

// A delivery waiting for its token gives up when its context ends
// (shutdown): it is not sent.
func TestMaxRateWaitEndsWithTheContext(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	r := newSubscriptionRates(func() time.Time { return t0 })
	if err := r.admit(context.Background(), "s", 1.5); err != nil { // the one token
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.admit(ctx, "s", 1.5); !errors.Is(err, context.Canceled) {
		t.Fatalf("admit with an ended context while waiting for a token = %v, want context.Canceled", err)
	}
}
