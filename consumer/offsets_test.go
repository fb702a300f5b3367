package consumer

import (
	"math/rand/v2"
	"testing"
)

// The committed offset must never pass a message that is still in flight,
// whatever order deliveries finish in, and must reach the end once all are
// finished. Offsets have gaps, as compacted or transactional topics do.
func TestOffsetTrackerNeverPassesUnfinished(t *testing.T) {
	for seed := uint64(0); seed < 300; seed++ {
		rng := rand.New(rand.NewPCG(seed, seed*7+1))
		tr := newOffsetTracker()
		n := 1 + rng.IntN(3000)
		offsets := make([]int64, n)
		next := int64(rng.IntN(1000))
		for i := range offsets {
			offsets[i] = next
			next += 1 + int64(rng.IntN(3)) // gaps
		}
		// started[i] and finished[i] describe offsets[i]; low is the index
		// of the lowest started, unfinished offset (== started when none).
		finished := make([]bool, n)
		started, low := 0, 0
		order := rng.Perm(n)
		for k := 0; k < n; {
			// Interleave reads and completions at random; an offset can
			// only finish once it has been read.
			if started < n && (rng.IntN(2) == 0 || started <= order[k]) {
				tr.start(offsets[started])
				started++
				continue
			}
			i := order[k]
			k++
			tr.finish(offsets[i])
			finished[i] = true
			for low < started && finished[low] {
				low++
			}
			got, ok := tr.committable()
			if !ok {
				t.Fatalf("seed %d: nothing committable after a start", seed)
			}
			want := offsets[started-1] + 1 // everything read is finished
			if low < started {
				want = offsets[low] // never past the lowest unfinished
			}
			if got != want {
				t.Fatalf("seed %d: committable %d, want %d", seed, got, want)
			}
		}
		got, _ := tr.committable()
		if want := offsets[n-1] + 1; got != want {
			t.Fatalf("seed %d: all finished, committable %d want %d", seed, got, want)
		}
		if tr.inFlight() != 0 {
			t.Fatalf("seed %d: in flight %d after all finished", seed, tr.inFlight())
		}
	}
}

func TestOffsetTrackerEmpty(t *testing.T) {
	tr := newOffsetTracker()
	if _, ok := tr.committable(); ok {
		t.Fatal("fresh tracker reports a committable offset")
	}
	tr.finish(5) // unknown offsets are ignored
	tr.start(10)
	if got, _ := tr.committable(); got != 10 {
		t.Fatalf("committable %d want 10 while 10 is in flight", got)
	}
}

// FuzzOffsetTracker drives the tracker with fuzzer-chosen completion orders.
func FuzzOffsetTracker(f *testing.F) {
	f.Add([]byte{3, 1, 2, 0}, uint16(4))
	f.Fuzz(func(t *testing.T, order []byte, n uint16) {
		count := int(n%512) + 1
		tr := newOffsetTracker()
		for i := 0; i < count; i++ {
			tr.start(int64(i * 2))
		}
		done := make([]bool, count)
		for _, b := range order {
			i := int(b) % count
			done[i] = true
			tr.finish(int64(i * 2))
			got, _ := tr.committable()
			for j := 0; j < count; j++ {
				if !done[j] && got > int64(j*2) {
					t.Fatalf("committable %d passes unfinished %d", got, j*2)
				}
			}
		}
	})
}
