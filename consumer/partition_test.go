package consumer

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// Reading that waits for window room says so at once and every
// windowFullEvery while it waits, and takes the slot when one frees; a
// window with room says nothing.
func TestAcquireTellsAFullWindow(t *testing.T) {
	sem := make(chan struct{}, 1)
	var told atomic.Int32
	full := func() { told.Add(1) }
	if !acquire(context.Background(), sem, full) || told.Load() != 0 {
		t.Fatalf("a window with room: acquired false or told it was full %d times", told.Load())
	}
	go func() {
		time.Sleep(3*windowFullEvery + windowFullEvery/2)
		<-sem
	}()
	if !acquire(context.Background(), sem, full) {
		t.Fatal("slot not taken once freed")
	}
	if n := told.Load(); n < 3 {
		t.Fatalf("told the window was full %d times while waiting 3.5 × %v, want at least 3", n, windowFullEvery)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if acquire(ctx, sem, full) {
		t.Fatal("acquired a slot of a full window after ctx ended")
	}
}
