package delivery

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

var rateT0 = time.Unix(1_700_000_000, 0)

func TestBucketUnlimitedAtRateZero(t *testing.T) {
	b := newTokenBucket(0, 0)
	for i := range 100_000 {
		if ok, wait := b.take(rateT0); !ok || wait != 0 {
			t.Fatalf("take %d of an unlimited bucket = %v, %v; want ok", i, ok, wait)
		}
	}
}

func TestBucketBurstThenWait(t *testing.T) {
	for _, tc := range []struct {
		rate, burst float64
		wantBurst   int
		wantWait    time.Duration
	}{
		{10, 5, 5, 100 * time.Millisecond},
		{1000, 50, 50, time.Millisecond},
		{0.5, 1, 1, 2 * time.Second},
		{3, 0.2, 1, 333333334}, // a burst below 1 is 1, or nothing would pass
	} {
		b := newTokenBucket(tc.rate, tc.burst)
		got := 0
		for {
			ok, wait := b.take(rateT0)
			if !ok {
				if wait != tc.wantWait {
					t.Errorf("rate %v burst %v: wait %v, want %v", tc.rate, tc.burst, wait, tc.wantWait)
				}
				break
			}
			got++
		}
		if got != tc.wantBurst {
			t.Errorf("rate %v burst %v: %d taken at once, want %d", tc.rate, tc.burst, got, tc.wantBurst)
		}
		if ok, _ := b.take(rateT0.Add(tc.wantWait - time.Nanosecond)); ok {
			t.Errorf("rate %v burst %v: a token 1 ns before the wait was over", tc.rate, tc.burst)
		}
		if ok, _ := b.take(rateT0.Add(tc.wantWait)); !ok {
			t.Errorf("rate %v burst %v: no token once the wait was over", tc.rate, tc.burst)
		}
		idle := rateT0.Add(time.Hour) // an idle hour saves up no more than the burst
		got = 0
		for ok, _ := b.take(idle); ok; ok, _ = b.take(idle) {
			got++
		}
		if got != tc.wantBurst {
			t.Errorf("rate %v burst %v: %d taken at once after an idle hour, want %d", tc.rate, tc.burst, got, tc.wantBurst)
		}
	}
}

func TestBucketNeverLetsAWindowOvershoot(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 429))
	for run := range 50 {
		rate := 1 + rng.Float64()*2000
		burst := 1 + rng.Float64()*rate/10
		b := newTokenBucket(rate, burst)
		var taken []time.Time
		now := rateT0
		for now.Sub(rateT0) < 10*time.Second {
			now = now.Add(time.Duration(rng.Int64N(int64(time.Second/time.Duration(rate))) + 1)) // offered at about twice the rate
			ok, wait := b.take(now)
			if ok {
				taken = append(taken, now)
				continue
			}
			if wait <= 0 {
				t.Fatalf("run %d: refused with wait %v", run, wait)
			}
			if rng.IntN(2) == 0 { // come back exactly when told: it must work
				now = now.Add(wait)
				if ok, _ := b.take(now); !ok {
					t.Fatalf("run %d: refused again after waiting the %v asked", run, wait)
				}
				taken = append(taken, now)
			}
		}
		max1s := math.Floor(rate + burst)
		for i, j := 0, 0; j < len(taken); j++ {
			for taken[j].Sub(taken[i]) >= time.Second {
				i++
			}
			if n := j - i + 1; float64(n) > max1s {
				t.Fatalf("run %d: %d taken within 1 s at rate %.1f burst %.1f", run, n, rate, burst)
			}
		}
		if want := rate * 9; float64(len(taken)) < want { // offered faster than the rate, it gets the rate
			t.Fatalf("run %d: %d taken in 10 s at rate %.1f, want at least %.0f", run, len(taken), rate, want)
		}
	}
}

func TestBucketSetRate(t *testing.T) {
	b := newTokenBucket(10, 1)
	b.take(rateT0)
	if _, wait := b.take(rateT0); wait != 100*time.Millisecond {
		t.Fatalf("wait at 10/s = %v", wait)
	}
	b.setRate(rateT0.Add(50*time.Millisecond), 100) // half a token earned at 10/s, the rest comes at 100/s
	if _, wait := b.take(rateT0.Add(50 * time.Millisecond)); wait != 5*time.Millisecond {
		t.Fatalf("wait after raising the rate to 100/s = %v, want 5ms", wait)
	}
	b.setRate(rateT0.Add(50*time.Millisecond), 0)
	if ok, _ := b.take(rateT0.Add(50 * time.Millisecond)); !ok {
		t.Fatal("rate 0 should be unlimited")
	}
	b.setRate(rateT0.Add(time.Second), 10)
	if ok, _ := b.take(rateT0.Add(time.Second)); !ok {
		t.Fatal("a bucket leaving unlimited should start full")
	}
	if ok, _ := b.take(rateT0); ok {
		t.Fatal("a clock that stepped back earned a token")
	}
}

// accept feeds c n acceptances evenly spread from 'from', at perSec, and
// returns when the last came.
func accept(c *rateControl, from time.Time, perSec float64, n int) time.Time {
	step := time.Duration(float64(time.Second) / perSec)
	now := from
	for range n {
		now = now.Add(step)
		c.accepted(now)
	}
	return now
}

func TestRateControlIsOffUntilTheFirst429(t *testing.T) {
	c := newRateControl()
	now := accept(c, rateT0, 50_000, 100_000)
	for i := range 10_000 {
		if ok, _ := c.take(now); !ok {
			t.Fatalf("take %d refused before any 429", i)
		}
	}
	if c.rate() != 0 {
		t.Fatalf("rate() = %v before any 429, want 0 (unlimited)", c.rate())
	}
}

func TestRateControlCutsOncePerSecondTo60PercentOfTheAcceptedRate(t *testing.T) {
	c := newRateControl()
	now := accept(c, rateT0, 500, 5000) // 10 s at 500/s
	c.throttled(now)
	if got := c.rate(); math.Abs(got-300) > 1 {
		t.Fatalf("rate after a 429 at 500/s accepted = %.1f, want 300", got)
	}
	cut := now
	// 429s from requests already in flight, over the next 999 ms.
	for i := 1; i < 1000; i++ {
		c.throttled(cut.Add(time.Duration(i) * time.Millisecond))
	}
	if got := c.rate(); math.Abs(got-300) > 1 {
		t.Fatalf("rate after 999 more 429s within a second = %.1f, want still 300", got)
	}
	c.throttled(cut.Add(time.Second)) // nothing accepted for 1 s: EWMA 500·e⁻¹ = 184
	if got, want := c.rate(), 0.6*500*math.Exp(-1); math.Abs(got-want) > 1 {
		t.Fatalf("rate after a 429 1 s after the cut = %.1f, want %.1f", got, want)
	}

	// A burst of 1,000 in 15 ms (the usual first 429 of a fixed-window partner) reads as 1,000/s.
	b := newRateControl()
	b.throttled(accept(b, rateT0, 1000.0/0.015, 1000))
	if got := b.rate(); math.Abs(got-600) > 10 {
		t.Fatalf("rate after a 429 following 1,000 accepted in 15 ms = %.1f, want about 600", got)
	}
	floor := newRateControl()
	floor.throttled(rateT0)
	if floor.rate() != rateMin {
		t.Fatalf("rate after a 429 with nothing accepted = %v, want the minimum %v", floor.rate(), rateMin)
	}
}

func TestRateControlCutNeverRaisesTheRate(t *testing.T) {
	c := newRateControl()
	cut := accept(c, rateT0, 500, 5000)
	c.throttled(cut) // 300/s
	// Answers to requests sent before the cut keep coming: 2,000 accepted in
	// the next second lift the EWMA far above the rate now allowed.
	next := accept(c, cut, 2000, 2000)
	c.take(next) // one calm second: 300 → 400
	before := c.rate()
	c.throttled(next)
	if got := c.rate(); got > before {
		t.Fatalf("a 429 raised the rate from %.1f to %.1f", before, got)
	}
}

func TestRateControlClimbsBackFastThenProbesSlowly(t *testing.T) {
	c := newRateControl()
	cut := accept(c, rateT0, 1000, 10_000)
	c.throttled(cut) // cut to 600, accepted 1,000/s
	at := func(d time.Duration) float64 {
		c.take(cut.Add(d))
		return c.rate()
	}
	// A 429 half a second in (too soon to cut again) makes that second not calm.
	c.throttled(cut.Add(500 * time.Millisecond))
	if got := at(1400 * time.Millisecond); math.Abs(got-600) > 2 {
		t.Fatalf("rate 0.9 s after a 429 = %.1f, want still 600", got)
	}
	want := []float64{800, 900, 950, 975, 987.5, 997.4, 1007.3, 1017.4, 1027.6}
	for i, w := range want {
		if got := at(1500*time.Millisecond + time.Duration(i)*time.Second); math.Abs(got-w) > 2 {
			t.Fatalf("rate after %d calm seconds = %.1f, want %.1f", i+1, got, w)
		}
	}
}

func TestRateControlUnlimitedAfterFiveCalmMinutes(t *testing.T) {
	c := newRateControl()
	cut := accept(c, rateT0, 1000, 10_000)
	c.throttled(cut)
	c.take(cut.Add(5*time.Minute - time.Second))
	if c.rate() == 0 {
		t.Fatal("unlimited before 5 calm minutes")
	}
	ok, _ := c.take(cut.Add(5 * time.Minute))
	if c.rate() != 0 || !ok {
		t.Fatalf("after 5 calm minutes rate() = %.1f, take ok = %v; want unlimited", c.rate(), ok)
	}
	for i := range 10_000 {
		if ok, _ := c.take(cut.Add(5 * time.Minute)); !ok {
			t.Fatalf("take %d refused once unlimited again", i)
		}
	}
	// And a 429 then starts over from what is accepted now.
	c.throttled(accept(c, cut.Add(5*time.Minute), 200, 1000))
	if got := c.rate(); math.Abs(got-120) > 2 {
		t.Fatalf("rate after a new 429 at 200/s accepted = %.1f, want 120", got)
	}
}

func TestRateControlPacesAtTheRate(t *testing.T) {
	c := newRateControl()
	cut := accept(c, rateT0, 500, 2500)
	c.throttled(cut) // 300/s, burst 15
	// Nothing for the second right after the cut: the bucket starts empty.
	sent := 0
	for ms := range 900 { // within the first second the rate does not move
		if ok, _ := c.take(cut.Add(time.Duration(ms) * time.Millisecond)); ok {
			sent++
		}
	}
	if sent < 265 || sent > 270 {
		t.Fatalf("%d sent in 900 ms at 300/s, want 270 at most and no burst on top", sent)
	}
}

type simResult struct {
	took      time.Duration
	delivered int
	n429      int
	rates     []float64 // rate() at the end of each simulated second
}

// simulateFixedWindowPartner drives rateControl against a partner that accepts
// at most quota requests per fixed 1 s window and answers 429 beyond. The
// sender offers as fast as the rate (and at most maxInFlight outstanding)
// allows, on a 1 ms clock; each answer arrives delay after its request, and a
// 429'd request goes back in the queue.
func simulateFixedWindowPartner(total, quota, maxInFlight int, delay, limit time.Duration) simResult {
	type req struct {
		due time.Time
		ok  bool
	}
	t0 := time.Unix(1_700_000_000, 0)
	c := newRateControl()
	var (
		res      simResult
		queue    = total
		inflight []req
		window   = -1
		used     int
	)
	for now := t0; now.Sub(t0) <= limit; now = now.Add(time.Millisecond) {
		n := 0
		for _, r := range inflight {
			if r.due.After(now) {
				inflight[n] = r
				n++
				continue
			}
			if r.ok {
				c.accepted(now)
				res.delivered++
			} else {
				c.throttled(now)
				res.n429++
				queue++
			}
		}
		inflight = inflight[:n]
		if res.delivered == total {
			res.took = now.Sub(t0)
			return res
		}
		for queue > 0 && len(inflight) < maxInFlight {
			if ok, _ := c.take(now); !ok {
				break
			}
			if w := int(now.Sub(t0) / time.Second); w != window {
				window, used = w, 0
			}
			ok := used < quota
			if ok {
				used++
			}
			inflight = append(inflight, req{due: now.Add(delay), ok: ok})
			queue--
		}
		if now.Sub(t0)%time.Second == time.Second-time.Millisecond {
			res.rates = append(res.rates, c.rate())
		}
	}
	res.took = limit
	return res
}

// The bench: a partner that takes 1,000 per second, 20,000 deliveries.
// Target: all delivered within 26 s, 429s at most 5% of the requests.
func TestRateControlMeetsTheFixedWindowBench(t *testing.T) {
	const total = 20_000
	res := simulateFixedWindowPartner(total, 1000, 384, 5*time.Millisecond, 60*time.Second)
	t.Logf("delivered %d in %v, %d 429s (%.1f%%), rate at each second %.0f",
		res.delivered, res.took, res.n429, 100*float64(res.n429)/total, res.rates)
	if res.delivered != total || res.took > 26*time.Second {
		t.Errorf("delivered %d of %d in %v, want all within 26s", res.delivered, total, res.took)
	}
	if res.n429 > total/20 {
		t.Errorf("%d 429s, want at most 5%% of %d = %d", res.n429, total, total/20)
	}
}
