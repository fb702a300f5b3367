package main

import (
	"context"
	"fmt"
	"time"
)

// settled is how a run of deliveries ended: each delivered (a distinct 200
// at a receiver) or dead-lettered.
type settled struct {
	delivered int64
	dead      int64 // records on the stage's dead-letter topic
	first     int64 // clock nanos of the first arrival
	last      int64 // clock nanos when the last delivery settled
}

func (s settled) drain() time.Duration { return time.Duration(s.last - s.first) }

// awaitSettled waits until want deliveries have each reached the phase's
// receivers or the dead-letter topic, which it counts every 250 ms. It fails
// when webhookd exits or nothing settles for stall. The per-second distinct
// deliveries from the first arrival go to *perSecond when not nil.
func (b *bench) awaitSettled(ctx context.Context, name string, st *stage, ph phase, want int64, stall time.Duration,
	w *webhookd, perSecond *[]int64) (settled, error) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var out settled
	var deadAt int64 // clock nanos when the dead count last grew
	lastN, lastChange, lastPrint, lastCount := int64(-1), time.Now(), time.Now(), time.Time{}
	var prev, nextSample int64
	for {
		n := ph.unique()
		if time.Since(lastCount) >= 250*time.Millisecond {
			lastCount = time.Now()
			dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			d, err := st.deadCount(dctx)
			cancel()
			if err != nil {
				return out, fmt.Errorf("count dead letters: %w", err)
			}
			if d > out.dead {
				out.dead, deadAt = d, b.clock.now()
			}
		}
		first, last := ph.window()
		if first != 0 && perSecond != nil {
			if nextSample == 0 {
				nextSample = first + int64(time.Second)
			}
			if now := b.clock.now(); now >= nextSample {
				*perSecond = append(*perSecond, n-prev)
				prev, nextSample = n, nextSample+int64(time.Second)
			}
		}
		if n+out.dead >= want {
			out.delivered, out.first, out.last = n, first, max(last, deadAt)
			if out.first == 0 { // nothing delivered: from webhookd's start
				out.first = int64(w.started.Sub(b.clock.base))
			}
			return out, nil
		}
		if s := n + out.dead; s != lastN {
			lastN, lastChange = s, time.Now()
		}
		if time.Since(lastChange) > stall {
			out.delivered, out.first, out.last = n, first, b.clock.now()
			return out, fmt.Errorf("stalled: %d delivered + %d dead-lettered of %d, nothing new for %s", n, out.dead, want, stall)
		}
		if err := w.alive(); err != nil {
			return out, err
		}
		if time.Since(lastPrint) >= 5*time.Second {
			lastPrint = time.Now()
			b.progress(name, "%d/%d delivered, %d dead-lettered", n, want, out.dead)
		}
		select {
		case <-ctx.Done():
			return out, ctx.Err()
		case <-tick.C:
		}
	}
}

// pct is 100 × part / whole.
func pct(part, whole int64) float64 {
	if whole == 0 {
		return 0
	}
	return 100 * float64(part) / float64(whole)
}
