package main

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// scenarioFast: 200,000 events × 2 subscriptions on two fast receivers,
// drained by webhookd; then, on the same receivers, the raw HTTP ceiling of
// a Go client and a naive one-at-a-time consumer on the same topic.
func (b *bench) scenarioFast(ctx context.Context, res *scenarioResult) error {
	recvs, closeAll, err := b.receivers(res, recvSpec{name: "fast-a"}, recvSpec{name: "fast-b"})
	if err != nil {
		return err
	}
	defer closeAll()
	events := b.n(200_000)
	st, err := b.prepare(ctx, res, recvs...)
	if err != nil {
		return err
	}
	defer b.cleanup(res, st)
	pre, err := preload(ctx, b.svc.Brokers, st.Topic, events, partitions)
	if err != nil {
		return err
	}
	dr, err := b.drainStage(ctx, res, st, pre, drainSpec{events: events, receivers: recvs, profile: b.opts.profile})
	if err != nil {
		return err
	}
	perSub := dr.rate / float64(len(recvs))
	b.fastPerSub, b.fastRate = perSub, dr.rate
	if dr.unique > 0 {
		b.fastCPU10k = dr.stats.CPUSeconds / float64(dr.unique) * 10_000
	}
	res.add("deliveries/s per subscription", perSub, "deliveries/s", "%.0f /s")
	if b.opts.drainOnly {
		res.note("-drain-only: raw HTTP ceiling and naive consumer not run")
		return nil
	}

	raw, err := b.rawCeiling(ctx, res, recvs)
	if err != nil {
		return err
	}
	res.add("webhookd ÷ raw HTTP ceiling", dr.rate/raw, "ratio", "%.3f").atLeast(0.6, "0.60")

	naive, err := b.naive(ctx, res, st, recvs)
	if err != nil {
		return err
	}
	res.add("webhookd ÷ naive consumer", dr.rate/naive, "ratio", "%.2f").atLeast(5, "5.0")
	return nil
}

// rawCeiling runs the raw client with a couple of worker counts and keeps
// the best.
func (b *bench) rawCeiling(ctx context.Context, res *scenarioResult, recvs []*receiver) (float64, error) {
	urls := make([]string, len(recvs))
	for i, r := range recvs {
		urls[i] = r.URL()
	}
	n := b.n(200_000)
	best := 0.0
	var tried []string
	for _, workers := range []int{16, 64, 256} {
		ph := make(phase, len(recvs))
		for i, r := range recvs {
			ph[i] = r.reset(0, false)
		}
		rr, err := runRawProcess(ctx, urls, n, workers)
		if err != nil {
			return 0, err
		}
		if got := ph.sum(func(t *tally) *atomicInt { return &t.answered }); got != rr.OK {
			return 0, fmt.Errorf("raw client: receivers answered %d requests, client saw %d", got, rr.OK)
		}
		tried = append(tried, fmt.Sprintf("%d workers: %.0f/s", workers, rr.rate()))
		best = max(best, rr.rate())
		b.progress(res.Name, "raw HTTP client, %d workers: %.0f requests/s", workers, rr.rate())
	}
	res.add("raw HTTP ceiling (best)", best, "requests/s", "%.0f /s")
	res.note("raw HTTP ceiling: %d POSTs of webhookd's payloads alternated over the same 2 receivers, from a Go client in a process of its own (as webhookd is), N goroutines over one shared http.Transport (MaxConnsPerHost = MaxIdleConnsPerHost = N); requests answered 2xx ÷ wall time of the run, best of: %s",
		n, strings.Join(tried, ", "))
	return best, nil
}

// naive runs the one-message-at-a-time consumer on the stage's topic in a
// group of its own.
func (b *bench) naive(ctx context.Context, res *scenarioResult, st *stage, recvs []*receiver) (float64, error) {
	limit := b.n(5_000)
	d := b.dur(20*time.Second, 3*time.Second)
	ph := make(phase, len(recvs))
	urls := make([]string, len(recvs))
	for i, r := range recvs {
		ph[i] = r.reset(int(b.n(200_000)), false)
		urls[i] = r.URL()
	}
	nr, err := runNaive(ctx, b.svc.Brokers, st.Topic, st.naiveGroup(), urls, limit, d)
	if err != nil {
		return 0, err
	}
	rate := ph.rate()
	first, last := ph.window()
	res.add("naive consumer", rate, "deliveries/s", "%.0f /s")
	res.note("naive consumer: kafka-go Reader (own group), FetchMessage → http.Post to each subscription in turn → CommitMessages, one message at a time; %d events, %d deliveries over %.2f s (first arrival → last answer; group join excluded), stopped at %d events or %s",
		nr.Events, ph.unique(), time.Duration(last-first).Seconds(), limit, d)
	if strings.HasPrefix(b.svc.KafkaKind, "embedded") {
		res.note("naive consumer: its synchronous commit per message goes to the in-process kfake and costs microseconds; on a real broker it costs milliseconds, so its rate, and the ratio, mean little here")
	}
	if dups := ph.sum(func(t *tally) *atomicInt { return &t.dups }); dups != 0 || ph.unique() != nr.Posts {
		res.note("naive consumer: receivers counted %d distinct and %d duplicates, the consumer %d 2xx", ph.unique(), dups, nr.Posts)
	}
	return rate, nil
}
