package main

import (
	"testing"
	"time"
)

func TestDistQuantiles(t *testing.T) {
	xs := make([]int64, 0, 100)
	for i := int64(100); i >= 1; i-- { // unsorted on purpose
		xs = append(xs, i)
	}
	d := newDist(xs)
	for _, c := range []struct {
		p    float64
		want int64
	}{{0.5, 50}, {0.99, 99}, {0.999, 100}, {1, 100}, {0.01, 1}, {0, 1}} {
		if got := d.q(c.p); got != c.want {
			t.Errorf("q(%v) = %d, want %d", c.p, got, c.want)
		}
	}
	if d.max() != 100 || d.n() != 100 {
		t.Errorf("max %d n %d, want 100 100", d.max(), d.n())
	}
	if xs[0] != 100 {
		t.Errorf("newDist sorted its input in place")
	}
	if got := newDist(nil).q(0.99); got != 0 {
		t.Errorf("empty q = %d, want 0", got)
	}
	if got := newDist([]int64{7}).q(0.99); got != 7 {
		t.Errorf("single q(0.99) = %d, want 7", got)
	}
}

func TestPerSecondStats(t *testing.T) {
	s := int64(time.Second)
	start := 10 * s
	samples := []timedSample{
		{start - 1, 999},               // before start: dropped
		{start, 5}, {start + s - 1, 7}, // second 0
		{start + 2*s, 3},        // second 2; second 1 is empty
		{start + 2*s + s/2, 40}, // second 2
	}
	got := perSecondStats(samples, start)
	if len(got) != 3 {
		t.Fatalf("got %d seconds, want 3: %+v", len(got), got)
	}
	want := []secondStat{{0, 2, 7, 7}, {1, 0, 0, 0}, {2, 2, 40, 40}}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("second %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if b := between(samples, start, start+2*s); b.n() != 2 || b.max() != 7 {
		t.Errorf("between: n %d max %d, want 2 7", b.n(), b.max())
	}
	if show := showSeconds([]secondStat{{0, 3, 2e6, 3e6}, {1, 0, 0, 0}, {2, 1, 12e6, 12e6}}); show != "2/3 - 12/12" {
		t.Errorf("showSeconds = %q, want %q", show, "2/3 - 12/12")
	}
}
