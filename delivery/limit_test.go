package delivery

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

var limitT0 = time.Unix(1_700_000_000, 0)

func TestLimitStartsAtCeilingAndClampsItsBounds(t *testing.T) {
	for _, tc := range []struct {
		floor, ceiling         int
		wantFloor, wantCeiling int
	}{
		{4, 384, 4, 384},
		{0, 10, 1, 10}, // a floor below 1 would let the limit reach 0 and stop delivery
		{8, 2, 8, 8},   // a ceiling below the floor is the floor
		{-3, -1, 1, 1},
	} {
		c := newConcurrencyLimit(tc.floor, tc.ceiling)
		if c.limit() != tc.wantCeiling {
			t.Errorf("newConcurrencyLimit(%d, %d).limit() = %d, want the ceiling %d", tc.floor, tc.ceiling, c.limit(), tc.wantCeiling)
		}
		c.toFloor(limitT0)
		if c.limit() != tc.wantFloor {
			t.Errorf("floor %d, ceiling %d: after toFloor limit = %d, want %d", tc.floor, tc.ceiling, c.limit(), tc.wantFloor)
		}
	}
}

func TestLimitLossCutsByAQuarterDownToTheFloor(t *testing.T) {
	c := newConcurrencyLimit(4, 384)
	now := limitT0
	var got []int
	for range 20 {
		now = now.Add(2 * time.Second) // each loss in an epoch of its own
		c.observe(now, limitSample{rtt: 10 * time.Millisecond, inFlight: c.limit(), signal: limitLoss})
		got = append(got, c.limit())
	}
	want := []int{288, 216, 162, 121, 90, 67, 50, 37, 27, 20, 15, 11, 8, 6, 4, 4, 4, 4, 4, 4}
	if !slices.Equal(got, want) {
		t.Fatalf("limits after successive losses = %v, want %v", got, want)
	}
}

func TestLimitManyLossesLandingTogetherCutOnce(t *testing.T) {
	c := newConcurrencyLimit(4, 384)
	// 384 requests time out within half a second of each other.
	for i := range 384 {
		now := limitT0.Add(time.Duration(i) * time.Millisecond)
		c.observe(now, limitSample{rtt: 10 * time.Second, inFlight: 384 - i, signal: limitLoss})
	}
	if c.limit() != 288 {
		t.Fatalf("limit after 384 timeouts in 384 ms = %d, want one cut to 288", c.limit())
	}
}

func TestLimitEpochIsTheMedianRTTAtLeastASecond(t *testing.T) {
	// A 3 s partner: its losses within 3 s of a cut are the same incident.
	c := newConcurrencyLimit(4, 384)
	for i := range limitRTTs {
		c.observe(limitT0.Add(time.Duration(i)*time.Millisecond), limitSample{rtt: 3 * time.Second, inFlight: 384, signal: limitOK})
	}
	loss := func(after time.Duration) int {
		c.observe(limitT0.Add(after), limitSample{rtt: 3 * time.Second, inFlight: 300, signal: limitLoss})
		return c.limit()
	}
	if got := loss(time.Minute); got != 288 {
		t.Fatalf("first loss: limit %d, want 288", got)
	}
	if got := loss(time.Minute + 2900*time.Millisecond); got != 288 {
		t.Fatalf("loss 2.9 s after the cut with a 3 s median rtt: limit %d, want still 288", got)
	}
	if got := loss(time.Minute + 3*time.Second); got != 216 {
		t.Fatalf("loss 3 s after the cut: limit %d, want a second cut to 216", got)
	}

	// A 10 ms partner: the epoch is the 1 s minimum, not 10 ms.
	f := newConcurrencyLimit(4, 384)
	f.observe(limitT0, limitSample{rtt: 10 * time.Millisecond, inFlight: 384, signal: limitLoss})
	f.observe(limitT0.Add(999*time.Millisecond), limitSample{rtt: 10 * time.Millisecond, inFlight: 288, signal: limitLoss})
	if f.limit() != 288 {
		t.Fatalf("fast partner, second loss 999 ms after the cut: limit %d, want still 288", f.limit())
	}
	f.observe(limitT0.Add(time.Second), limitSample{rtt: 10 * time.Millisecond, inFlight: 288, signal: limitLoss})
	if f.limit() != 216 {
		t.Fatalf("fast partner, loss 1 s after the cut: limit %d, want 216", f.limit())
	}
}

// A fast partner (10 ms rtt) kept busy at its limit recovers from the floor
// by one per rtt: 380 rtts, 3.8 s, from 4 to 384.
func TestLimitRecoversFromTheFloorByOnePerWindow(t *testing.T) {
	const rtt = 10 * time.Millisecond
	c := newConcurrencyLimit(4, 384)
	c.toFloor(limitT0)
	now := limitT0
	var rounds int
	for c.limit() < 384 && rounds < 10_000 {
		rounds++
		now = now.Add(rtt)
		l := c.limit()
		for range l { // the whole window answers in this rtt, each slot refilled at once
			c.observe(now, limitSample{rtt: rtt, inFlight: l, signal: limitOK})
		}
		if c.limit() != l+1 {
			t.Fatalf("round %d: a window of %d successes took the limit from %d to %d, want +1", rounds, l, l, c.limit())
		}
	}
	if took := now.Sub(limitT0); took != 3800*time.Millisecond {
		t.Fatalf("recovery from 4 to 384 at 10 ms rtt took %v, want 3.8s", took)
	}
	for range 1000 {
		c.observe(now, limitSample{rtt: rtt, inFlight: 384, signal: limitOK})
	}
	if c.limit() != 384 {
		t.Fatalf("limit rose above the ceiling: %d", c.limit())
	}
}

func TestLimitAppLimitedSuccessesDoNotRaise(t *testing.T) {
	c := newConcurrencyLimit(4, 384)
	c.observe(limitT0, limitSample{rtt: 10 * time.Millisecond, inFlight: 384, signal: limitLoss}) // 288
	for i := range 100_000 {
		// 143 in flight is just under half of 288: the partner is not using its limit.
		c.observe(limitT0.Add(time.Duration(i)*time.Millisecond), limitSample{rtt: 10 * time.Millisecond, inFlight: 143, signal: limitOK})
	}
	if c.limit() != 288 {
		t.Fatalf("100,000 successes with 143 of 288 in flight moved the limit to %d, want 288", c.limit())
	}
	for range 288 {
		c.observe(limitT0.Add(time.Hour), limitSample{rtt: 10 * time.Millisecond, inFlight: 144, signal: limitOK})
	}
	if c.limit() != 289 {
		t.Fatalf("288 successes with half the limit in flight: limit %d, want 289", c.limit())
	}
}

func TestLimitIgnoredSamplesChangeNothing(t *testing.T) {
	c := newConcurrencyLimit(4, 384)
	c.observe(limitT0, limitSample{rtt: time.Millisecond, inFlight: 384, signal: limitLoss}) // 288
	for i := range 10_000 {
		c.observe(limitT0.Add(time.Duration(i)*time.Second), limitSample{rtt: time.Hour, inFlight: 384, signal: limitIgnore})
	}
	if c.limit() != 288 {
		t.Fatalf("ignored samples moved the limit to %d", c.limit())
	}
	// Nor did their hour-long rtts reach the epoch: a loss 1 s after the cut still cuts.
	c.observe(limitT0.Add(time.Second), limitSample{rtt: time.Millisecond, inFlight: 288, signal: limitLoss})
	if c.limit() != 216 {
		t.Fatalf("loss 1 s after the cut: limit %d, want 216", c.limit())
	}
}

// The guide lets a partner take seconds to answer: a 6 s partner that always
// answers 2xx keeps the ceiling however long it runs.
func TestLimitSlowSteadyPartnerKeepsTheCeiling(t *testing.T) {
	c := newConcurrencyLimit(4, 384)
	now := limitT0
	for range 3600 { // an hour
		now = now.Add(time.Second)
		for range 64 { // 384 in flight / 6 s
			c.observe(now, limitSample{rtt: 6 * time.Second, inFlight: 384, signal: limitOK})
		}
	}
	if c.limit() != 384 {
		t.Fatalf("a slow, healthy partner's limit is %d, want the ceiling 384", c.limit())
	}
}

func TestLimitStaysWithinBoundsAndCutsOncePerSecondAtMost(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 2024))
	signals := []limitSignal{limitOK, limitOK, limitOK, limitLoss, limitIgnore}
	for run := range 200 {
		floor := rng.IntN(40) + 1
		ceiling := floor + rng.IntN(500)
		c := newConcurrencyLimit(floor, ceiling)
		now := limitT0
		var lastDrop time.Time
		for i := range 5000 {
			now = now.Add(time.Duration(rng.Int64N(int64(300 * time.Millisecond))))
			before := c.limit()
			stall := rng.IntN(500) == 0
			if stall {
				c.toFloor(now)
			} else {
				c.observe(now, limitSample{
					rtt:      time.Duration(rng.Int64N(int64(8 * time.Second))),
					inFlight: rng.IntN(2*ceiling + 1),
					signal:   signals[rng.IntN(len(signals))],
				})
			}
			l := c.limit()
			if l < floor || l > ceiling {
				t.Fatalf("run %d step %d: limit %d outside [%d, %d]", run, i, l, floor, ceiling)
			}
			if l < before && !stall {
				if !lastDrop.IsZero() && now.Sub(lastDrop) < limitMinEpoch {
					t.Fatalf("run %d step %d: two cuts %v apart", run, i, now.Sub(lastDrop))
				}
			}
			if l < before || stall {
				lastDrop = now
			}
		}
	}
}
