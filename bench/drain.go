package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"
)

// drainSpec is one "preload, start webhookd, deliver everything" run.
type drainSpec struct {
	events    int64
	receivers []*receiver // one subscription each
	profile   bool        // fetch CPU and heap profiles while draining
	env       map[string]string
}

// drainResult is what a drain measured.
type drainResult struct {
	rate   float64       // unique deliveries / window
	window time.Duration // first arrival at any receiver → last answer
	want   int64
	unique int64
	stats  procStats
}

// drain preloads spec.events into a fresh stage, subscribes every receiver
// and drains it with webhookd (see drainStage).
func (b *bench) drain(ctx context.Context, res *scenarioResult, spec drainSpec) (drainResult, error) {
	st, err := b.prepare(ctx, res, spec.receivers...)
	if err != nil {
		return drainResult{}, err
	}
	defer b.cleanup(res, st)
	pre, err := preload(ctx, b.svc.Brokers, st.Topic, spec.events, partitions)
	if err != nil {
		return drainResult{}, err
	}
	return b.drainStage(ctx, res, st, pre, spec)
}

// drainStage starts webhookd on a preloaded stage, waits until every event
// reached every receiver, and records the standard rows: preload rate,
// deliveries/s, completeness and the process's CPU and memory.
func (b *bench) drainStage(ctx context.Context, res *scenarioResult, st *stage, pre preloadResult, spec drainSpec) (drainResult, error) {
	res.add("preload rate (kafka-go Writer, acks=all)", pre.rate(), "events/s", "%.0f events/s")
	res.note("preloaded %d events (avg %d bytes key+value) in %.1f s before starting webhookd", pre.Events, pre.Bytes/max(pre.Events, 1), pre.Duration.Seconds())

	ph := make(phase, len(spec.receivers))
	for i, r := range spec.receivers {
		ph[i] = r.reset(int(spec.events), false)
	}
	w, err := startWebhookd(ctx, b.bin, b.logDir, st, spec.env)
	if err != nil {
		return drainResult{}, err
	}
	stopped := false
	defer func() {
		if !stopped {
			w.terminate()
		}
	}()
	var profiles sync.WaitGroup
	if spec.profile {
		profiles.Go(func() {
			if ph.waitFirst(ctx) == nil {
				b.fetchProfiles(ctx, res, w)
			}
		})
	}
	want := spec.events * int64(len(spec.receivers))
	var perSecond []int64
	waitErr := b.await(ctx, st.Name, ph, want, 60*time.Second, w, &perSecond)
	w.snapshot()
	profiles.Wait()
	time.Sleep(500 * time.Millisecond) // late duplicates, if any, show up in the check
	stopped = true
	stats := w.terminate()

	out := drainResult{rate: ph.rate(), want: want, unique: ph.unique(), stats: stats}
	first, last := ph.window()
	out.window = time.Duration(last - first)
	res.add("deliveries/s", out.rate, "deliveries/s", "%.0f /s")
	res.note("deliveries/s = distinct (event, subscription) pairs answered 200 at the receivers ÷ time from the first request's arrival to the last answer (%.2f s); webhookd ready %.2f s after exec, first delivery %.2f s after exec",
		out.window.Seconds(), stats.StartToReady, b.clock.base.Add(time.Duration(first)).Sub(w.started).Seconds())
	if len(perSecond) >= 3 {
		res.add("deliveries/s, median whole second (plateau, no target)", median(perSecond), "deliveries/s", "%.0f /s")
	}
	b.checkComplete(res, ph, want)
	res.addProc(stats, out.unique)
	res.series(perSecond)
	return out, waitErr
}

// prepare makes the scenario's stage: topic with 12 partitions and one
// subscription per receiver.
func (b *bench) prepare(ctx context.Context, res *scenarioResult, receivers ...*receiver) (*stage, error) {
	st := b.svc.newStage(b.runID, res.Name)
	if err := st.createTopic(ctx); err != nil {
		return nil, err
	}
	urls := make([]string, len(receivers))
	for i, r := range receivers {
		urls[i] = r.URL()
	}
	if err := st.subscribe(ctx, urls...); err != nil {
		return nil, fmt.Errorf("add subscriptions: %w", err)
	}
	return st, nil
}

func (b *bench) cleanup(res *scenarioResult, st *stage) {
	if b.opts.keep {
		res.note("kept topic and group %s, Redis prefix %s (-keep)", st.Topic, st.Prefix)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := st.cleanup(ctx); err != nil {
		res.note("cleanup of %s: %v", st.Topic, err)
	}
}

// checkComplete adds the correctness row: exactly want distinct deliveries,
// no duplicates, nothing unrecognised.
func (b *bench) checkComplete(res *scenarioResult, ph phase, want int64) {
	unique := ph.unique()
	dups := ph.sum(func(t *tally) *atomicInt { return &t.dups })
	bad := ph.sum(func(t *tally) *atomicInt { return &t.unparsed }) + ph.sum(func(t *tally) *atomicInt { return &t.readErrs })
	res.check("deliveries counted", unique == want && dups == 0 && bad == 0,
		fmt.Sprintf("%d distinct, %d duplicates, %d unrecognised", unique, dups, bad),
		fmt.Sprintf("%d, 0, 0", want))
}

// await waits until the phase counts want distinct deliveries. It fails when
// webhookd exits, or when nothing new arrives for stall. It prints progress
// every 5 s.
// It appends the deliveries of every whole second after the first one to
// *perSecond, to show stalls.
func (b *bench) await(ctx context.Context, name string, ph phase, want int64, stall time.Duration, w *webhookd, perSecond *[]int64) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	lastN, lastChange, lastPrint := int64(-1), time.Now(), time.Now()
	var prev, nextSample int64
	for {
		n := ph.unique()
		if first, _ := ph.window(); first != 0 && perSecond != nil {
			if nextSample == 0 {
				nextSample = first + int64(time.Second)
			}
			if now := b.clock.now(); now >= nextSample {
				*perSecond = append(*perSecond, n-prev)
				prev, nextSample = n, nextSample+int64(time.Second)
			}
		}
		if n >= want {
			return nil
		}
		if n != lastN {
			lastN, lastChange = n, time.Now()
		}
		if time.Since(lastChange) > stall {
			return fmt.Errorf("stalled: %d of %d deliveries, nothing new for %s", n, want, stall)
		}
		if w != nil {
			if err := w.alive(); err != nil {
				return err
			}
		}
		if time.Since(lastPrint) >= 5*time.Second {
			lastPrint = time.Now()
			b.progress(name, "%d/%d deliveries, %.0f/s so far", n, want, ph.rate())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func (b *bench) progress(name, format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s [%s] %s\n", time.Now().Format("15:04:05"), name, fmt.Sprintf(format, args...))
}

func median(xs []int64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return float64(s[len(s)/2])
	}
	return float64(s[len(s)/2-1]+s[len(s)/2]) / 2
}
