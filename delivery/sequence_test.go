package delivery

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func newTestSequencer(t *testing.T) (*sequencer, *clock) {
	w := newWorkers()
	t.Cleanup(w.close)
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	s := newSequencer(w)
	s.now = clk.now
	return s, clk
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// A key's tasks run one at a time in the order handed over; other keys'
// tasks do not wait for them.
func TestSequencerKeepsEachKeysOrder(t *testing.T) {
	s, _ := newTestSequencer(t)
	var mu sync.Mutex
	got := map[string][]int{}
	var wg sync.WaitGroup
	running := map[string]int{}
	for i := range 200 {
		k := seqKey{"sub", []string{"a", "b", "c"}[i%3]}
		wg.Add(1)
		s.run(k, func(*turn) {
			defer wg.Done()
			mu.Lock()
			running[k.key]++
			if running[k.key] > 1 {
				t.Errorf("key %s: two tasks at once", k.key)
			}
			got[k.key] = append(got[k.key], i)
			mu.Unlock()
			time.Sleep(10 * time.Microsecond)
			mu.Lock()
			running[k.key]--
			mu.Unlock()
		})
	}
	wg.Wait()
	for k, seq := range got {
		if !slices.IsSorted(seq) || len(seq) < 66 {
			t.Errorf("key %s ran %d tasks in order %v", k, len(seq), seq)
		}
	}
	waitFor(t, "every key idle once every task ended", func() bool { return s.busy() == 0 })
}

// A task that has waited leaveAfter with others queued behind it is asked
// to step aside; once it agrees, the tasks behind it run, in order, while
// it is still running. One that does not offer, or refuses, holds its key.
func TestSequencerStepsAsideForALongTask(t *testing.T) {
	for _, tc := range []struct {
		name       string
		offer      bool
		agree      bool
		wantAside  bool
		queueFirst int // tasks queued before the clock moves on
	}{
		{name: "agrees after leaveAfter", offer: true, agree: true, wantAside: true, queueFirst: 1},
		{name: "refuses", offer: true, agree: false, wantAside: false, queueFirst: 1},
		{name: "offers nothing", offer: false, wantAside: false, queueFirst: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, clk := newTestSequencer(t)
			k := seqKey{"sub", "hot"}
			release := make(chan struct{})
			offered := make(chan struct{})
			var asked atomic.Int32
			var mu sync.Mutex
			var ran []int
			var wg sync.WaitGroup
			wg.Add(1)
			s.run(k, func(tn *turn) {
				defer wg.Done()
				if tc.offer {
					tn.offer(func() bool { asked.Add(1); return tc.agree })
				}
				close(offered)
				<-release
				tn.withdraw()
				mu.Lock()
				ran = append(ran, 0)
				mu.Unlock()
			})
			<-offered
			next := func(i int) {
				wg.Add(1)
				s.run(k, func(*turn) {
					defer wg.Done()
					mu.Lock()
					ran = append(ran, i)
					mu.Unlock()
				})
			}
			next(1) // queued: the head has not run long yet
			if asked.Load() != 0 {
				t.Fatalf("asked to step aside after %v", time.Duration(0))
			}
			clk.add(leaveAfter)
			next(2) // the head has run leaveAfter: asked now
			next(3)
			if tc.wantAside {
				waitFor(t, "the tasks behind the head to run", func() bool {
					mu.Lock()
					defer mu.Unlock()
					return len(ran) == 3
				})
				mu.Lock()
				if !slices.Equal(ran, []int{1, 2, 3}) {
					t.Errorf("ran %v while the head ran, want [1 2 3]", ran)
				}
				mu.Unlock()
			} else {
				time.Sleep(20 * time.Millisecond)
				mu.Lock()
				if len(ran) != 0 {
					t.Errorf("ran %v while the head ran, want nothing", ran)
				}
				mu.Unlock()
			}
			close(release)
			wg.Wait()
			if tc.offer && asked.Load() != 1 {
				t.Errorf("asked %d times, want once", asked.Load())
			}
			if !tc.wantAside && !slices.Equal(ran, []int{0, 1, 2, 3}) {
				t.Errorf("ran %v, want [0 1 2 3]", ran)
			}
			waitFor(t, "the key idle once every task ended", func() bool { return s.busy() == 0 })
		})
	}
}

// maxBehind tasks waiting behind one ask it to step aside, however long it
// has run.
func TestSequencerStepsAsideForALongQueue(t *testing.T) {
	s, _ := newTestSequencer(t)
	k := seqKey{"sub", "hot"}
	release := make(chan struct{})
	offered := make(chan struct{})
	var asked atomic.Int32
	var wg sync.WaitGroup
	wg.Add(1)
	s.run(k, func(tn *turn) {
		defer wg.Done()
		tn.offer(func() bool { asked.Add(1); return true })
		close(offered)
		<-release
		tn.withdraw()
	})
	<-offered
	var done atomic.Int32
	for i := range maxBehind {
		if asked.Load() != 0 {
			t.Fatalf("asked with %d behind, want at %d", i, maxBehind)
		}
		wg.Add(1)
		s.run(k, func(*turn) { defer wg.Done(); done.Add(1) })
	}
	waitFor(t, "the queue behind the head to run", func() bool { return done.Load() == maxBehind })
	close(release)
	wg.Wait()
}
