package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/unibo/webhookd/config"
	"github.com/unibo/webhookd/delivery"
)

// Issue 11's partners as they are: one that takes 6 s to answer, one that
// rate-limits, one that hangs, one that pauses us for an hour.

// runSettle is a "preload, start webhookd, wait until every delivery is
// delivered or dead-lettered" run on one receiver.
type runSettle struct {
	st    *stage
	ph    phase
	out   settled
	stats procStats
	dead  *recordTally
	per   []int64
}

// settleOne preloads events for recv's subscription, runs webhookd with
// env until each is delivered or dead-lettered (stall: nothing settles for
// that long), releases the receiver's held requests and stops webhookd.
func (b *bench) settleOne(ctx context.Context, res *scenarioResult, recv *receiver, events int64, stall time.Duration, env map[string]string) (*runSettle, func(), error) {
	st, err := b.prepare(ctx, res, recv)
	if err != nil {
		return nil, func() {}, err
	}
	done := func() { b.cleanup(res, st) }
	pre, err := preload(ctx, b.svc.Brokers, st.Topic, events, partitions)
	if err != nil {
		return nil, done, err
	}
	res.add("preload rate (kafka-go Writer, acks=all)", pre.rate(), "events/s", "%.0f events/s")
	r := &runSettle{st: st, ph: phase{recv.reset(int(events), false)}}
	w, err := startWebhookd(ctx, b.bin, b.logDir, st, env)
	if err != nil {
		return nil, done, err
	}
	out, waitErr := b.awaitSettled(ctx, res.Name, st, r.ph, events, stall, w, &r.per)
	w.snapshot()
	time.Sleep(500 * time.Millisecond) // late duplicates, if any
	recv.release()                     // held requests end, so shutdown does not wait on them
	r.stats = w.terminate()
	r.out = out
	// Dead letters written during shutdown count too.
	if d, err := b.deadLetters(st); err != nil {
		res.note("dead letters not read: %v", err)
	} else {
		r.dead = d
		var n int64
		for _, c := range d.bySub {
			n += c
		}
		r.out.dead = max(r.out.dead, n)
	}
	return r, done, waitErr
}

// scenarioSlow6s: one subscription whose receiver answers every request
// after 6 s, 2,000 events preloaded, webhookd at its defaults.
func (b *bench) scenarioSlow6s(ctx context.Context, res *scenarioResult) error {
	const delay = 6 * time.Second
	recvs, closeAll, err := b.receivers(res, recvSpec{name: "slow6s", kind: delayed, delay: delay})
	if err != nil {
		return err
	}
	defer closeAll()
	events := b.n(2000)
	r, done, err := b.settleOne(ctx, res, recvs[0], events, 90*time.Second, nil)
	defer done()
	if r == nil {
		return err
	}
	conc := config.Defaults().Delivery.EndpointConcurrency
	ideal := time.Duration(events) * delay / time.Duration(conc)
	res.add("delivered (200)", pct(r.out.delivered, events), "%", "%.1f %%").atLeast(100, "100 %")
	res.add("dead letters", float64(r.out.dead), "records", "%.0f").atMost(0, "0")
	res.add("drain time", r.out.drain().Seconds(), "s", "%.1f s")
	res.add("ideal drain time", ideal.Seconds(), "s", "%.1f s")
	ratio := res.add("drain ÷ ideal", r.out.drain().Seconds()/ideal.Seconds(), "ratio", "%.2f").atMost(1.2, "1.2")
	if r.out.delivered < events { // fast because it gave up is no pass
		fail := false
		ratio.Pass, ratio.Target = &fail, ratio.Target+", every event delivered"
	}
	res.note("1 subscription, receiver sleeps %s then answers 200; webhookd defaults; %d events preloaded; ideal = %d × %s ÷ delivery.endpoint_concurrency %d (its default)",
		delay, events, events, delay, conc)
	res.note("drain time: first arrival → the last delivery settled (answered 200, or its dead letter counted on the run's DLQ topic, polled every 250 ms)")
	if r.dead != nil {
		res.note("dead letters by subscription (reason): %s", r.dead)
	}
	res.note("receiver was sent %d requests, answered %d with 200 (%d distinct)", r.ph[0].requests.Load(), r.ph[0].answered.Load(), r.ph[0].unique.Load())
	b.retryCounts(res, r.st)
	res.addProc(r.stats, r.out.delivered)
	res.series(r.per)
	return err
}

// scenarioRateLimited: a 20,000-event burst preloaded for a receiver that
// answers 429 + Retry-After: 1 beyond 1,000 requests/s.
func (b *bench) scenarioRateLimited(ctx context.Context, res *scenarioResult) error {
	recvs, closeAll, err := b.receivers(res, recvSpec{name: "ratelimited", kind: limited})
	if err != nil {
		return err
	}
	defer closeAll()
	events := b.n(20_000)
	r, done, err := b.settleOne(ctx, res, recvs[0], events, 90*time.Second, nil)
	defer done()
	if r == nil {
		return err
	}
	t := r.ph[0]
	ideal := time.Duration(float64(events) / limitPerSecond * float64(time.Second))
	res.add("delivered (200)", pct(r.out.delivered, events), "%", "%.1f %%").atLeast(100, "100 %")
	res.add("dead letters", float64(r.out.dead), "records", "%.0f").atMost(0, "0")
	res.add("drain time", r.out.drain().Seconds(), "s", "%.1f s").atMost(1.3*ideal.Seconds(), fmt.Sprintf("%.1f s (1.3 × %.0f s)", 1.3*ideal.Seconds(), ideal.Seconds()))
	res.add("429 ratio (429s ÷ all requests)", pct(t.refused.Load(), t.requests.Load()), "%", "%.1f %%").atMost(5, "5 %")
	res.check("duplicates of delivered ids", t.dups.Load() == 0, fmt.Sprintf("%d", t.dups.Load()), "0")
	res.note("receiver: token bucket of %d requests/s holding at most a second's worth; beyond it 429 + Retry-After: 1; %d events preloaded; webhookd defaults", limitPerSecond, events)
	res.note("receiver was sent %d requests: %d answered 429, %d answered 200 (%d distinct); drain time from the first arrival to the last delivery settled; ideal %s = events ÷ %d/s",
		t.requests.Load(), t.refused.Load(), t.answered.Load(), t.unique.Load(), ideal, limitPerSecond)
	if r.dead != nil {
		res.note("dead letters by subscription (reason): %s", r.dead)
	}
	b.retryCounts(res, r.st)
	res.addProc(r.stats, r.out.delivered)
	res.series(r.per)
	return err
}

// scenarioHung: a healthy fast receiver and one that answers fast for the
// first quarter of the run, then never answers (holds every request); a
// steady 2,000 events/s, each carrying its send time. The healthy
// partner's latency, second by second, before and after the onset.
func (b *bench) scenarioHung(ctx context.Context, res *scenarioResult) error {
	recvs, closeAll, err := b.receivers(res, recvSpec{name: "healthy"}, recvSpec{name: "hung"})
	if err != nil {
		return err
	}
	defer closeAll()
	healthy, hung := recvs[0], recvs[1]
	st, err := b.prepare(ctx, res, recvs...)
	if err != nil {
		return err
	}
	defer b.cleanup(res, st)
	d := b.dur(60*time.Second, 8*time.Second)
	onsetAfter := d / 4
	const perTick, tick = 20, 10 * time.Millisecond
	ids := int(d/tick)*perTick + 100*perTick
	ht := healthy.reset(ids, true)
	gt := hung.reset(ids, false)
	w, err := startWebhookd(ctx, b.bin, b.logDir, st, nil)
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			hung.release()
			w.terminate()
		}
	}()
	var onsetWall atomic.Int64
	var deliveredBeforeOnset atomic.Int64
	startWall := time.Now().UnixNano()
	onset := time.AfterFunc(onsetAfter, func() {
		deliveredBeforeOnset.Store(gt.unique.Load())
		onsetWall.Store(time.Now().UnixNano())
		hung.hang()
	})
	defer onset.Stop()
	if b.opts.profile { // what the hang costs: profiles from 5 s after its onset
		profiled := make(chan struct{})
		defer func() { <-profiled }()
		go func() {
			defer close(profiled)
			select {
			case <-ctx.Done():
				return
			case <-time.After(onsetAfter + 5*time.Second):
			}
			b.fetchProfiles(ctx, res, w)
		}()
	}
	sr, err := produceSteady(ctx, b.svc.Brokers, st.Topic, perTick, tick, d)
	if err != nil {
		return err
	}
	waitErr := b.await(ctx, res.Name, phase{ht}, sr.Events, 60*time.Second, w, nil)
	// Give the hung partner's deliveries time to settle (circuit, stall
	// timeout), then count them.
	deadline := time.Now().Add(b.dur(20*time.Second, 10*time.Second))
	var deadSoFar int64
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if deadSoFar, _ = st.deadCount(ctx); deadSoFar+gt.unique.Load() >= sr.Events {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	w.snapshot()
	held := hung.held.Load()
	hung.release()
	stopped = true
	stats := w.terminate()

	res.add("produced", float64(sr.Events)/sr.Duration.Seconds(), "events/s", "%.0f events/s")
	if sr.Late > 0 {
		res.note("producer: %d of %d ticks took longer than %s to write", sr.Late, sr.Events/perTick, tick)
	}
	samples := ht.lat.timed()
	if len(samples) == 0 {
		return errors.Join(waitErr, errors.New("no latency samples"))
	}
	on := onsetWall.Load()
	if on == 0 {
		return errors.Join(waitErr, errors.New("the hang never started"))
	}
	end := startWall + int64(sr.Duration)
	onsetEnd := on + int64(10*time.Second)
	base := between(samples, startWall, on)
	atOnset := between(samples, on, min(onsetEnd, end))
	after := between(samples, onsetEnd, end)
	res.add("healthy latency p99, baseline", msOf(base.q(0.99)), "ms", "%.1f ms")
	res.add("healthy latency max, baseline", msOf(base.max()), "ms", "%.1f ms")
	res.add("healthy latency p99, onset (first 10 s of the hang)", msOf(atOnset.q(0.99)), "ms", "%.1f ms").
		atMost(1.5*msOf(base.q(0.99)), fmt.Sprintf("%.1f ms (1.5 × baseline)", 1.5*msOf(base.q(0.99))))
	res.add("healthy latency max, onset", msOf(atOnset.max()), "ms", "%.1f ms").atMost(250, "250 ms")
	if after.n() > 0 {
		res.add("healthy latency p99, after onset", msOf(after.q(0.99)), "ms", "%.1f ms").
			atMost(1.5*msOf(base.q(0.99)), fmt.Sprintf("%.1f ms (1.5 × baseline)", 1.5*msOf(base.q(0.99))))
		res.add("healthy latency max, after onset", msOf(after.max()), "ms", "%.1f ms").atMost(250, "250 ms")
	} else {
		res.note("no samples after the onset window: run longer (-scale)")
	}
	whole := newDist(ht.lat.samples())
	res.add("healthy latency p99, whole run", msOf(whole.q(0.99)), "ms", "%.1f ms")
	res.add("healthy latency max, whole run", msOf(whole.max()), "ms", "%.1f ms")
	per := perSecondStats(samples, startWall)
	var worstP99, worstSec int
	for i, s := range per {
		if s.P99 > per[worstP99].P99 {
			worstP99 = i
		}
		if s.Max > per[worstSec].Max {
			worstSec = i
		}
	}
	res.add("healthy latency, worst second's p99", msOf(per[worstP99].P99), "ms", "%.1f ms")
	res.note("healthy latency p99/max in ms, each second of sending (by send time; hang starts at second %.1f; worst p99 in second %d, worst max in second %d): %s",
		time.Duration(on-startWall).Seconds(), worstP99, worstSec, showSeconds(per))
	res.note("%d events in %.1f s (%d every %s) to 2 subscriptions; the hung receiver answered 200 at once for the first %s, then held every request without answering until the end; latency = arrival at the healthy receiver − wall time just before WriteMessages; baseline = sent before the onset, onset = sent in the 10 s after it, after = sent later; %d samples",
		sr.Events, sr.Duration.Seconds(), perTick, tick, onsetAfter, len(samples))
	b.checkComplete(res, phase{ht}, sr.Events)

	deadTally, derr := b.deadLetters(st)
	hungSub, healthySub := "bench-"+res.Name+"-2", "bench-"+res.Name+"-1"
	var hungDead, healthyDead int64
	if derr != nil {
		res.note("dead letters not read: %v", derr)
	} else {
		hungDead, healthyDead = deadTally.bySub[hungSub], deadTally.bySub[healthySub]
		res.note("dead letters by subscription (reason): %s", deadTally)
	}
	res.add("hung partner: delivered (200)", float64(gt.unique.Load()), "deliveries", "%.0f")
	res.add("hung partner: dead-lettered", float64(hungDead), "records", "%.0f")
	res.add("hung partner: neither (not settled)", float64(sr.Events-gt.unique.Load()-hungDead), "deliveries", "%.0f")
	res.add("healthy partner: dead-lettered", float64(healthyDead), "records", "%.0f").atMost(0, "0")
	res.note("hung receiver: %d delivered before the onset, %d requests sent to it in all, %d held unanswered when released",
		deliveredBeforeOnset.Load(), gt.requests.Load(), held)
	b.retryCounts(res, st)
	res.addProc(stats, ht.unique.Load()+gt.unique.Load())
	return waitErr
}

// scenarioPaused: partner A answers 503 + Retry-After: 3600 to everything;
// partner B answers 500 to the first request of each webhook id and 200
// after, with retries on (min backoff 1 s) and the breaker out of the way
// (B's first requests are an unbroken error streak). How late B's retries
// arrive against when they were due.
func (b *bench) scenarioPaused(ctx context.Context, res *scenarioResult) error {
	recvs, closeAll, err := b.receivers(res, recvSpec{name: "paused-a", kind: refusing}, recvSpec{name: "retried-b", kind: failFirst})
	if err != nil {
		return err
	}
	defer closeAll()
	a, bb := recvs[0], recvs[1]
	st, err := b.prepare(ctx, res, recvs...)
	if err != nil {
		return err
	}
	defer b.cleanup(res, st)
	const backoff = time.Second
	env := map[string]string{
		"WEBHOOKD_DELIVERY_RETRY_MAX_ATTEMPTS": "5",
		"WEBHOOKD_DELIVERY_RETRY_MIN_BACKOFF":  backoff.String(),
		// B fails every first request: 200 failures a second in a row, an
		// error streak that opens any breaker (as it should for a partner
		// failing everything). The scenario measures when retries arrive,
		// not the breaker: it is kept out of the way.
		"WEBHOOKD_DELIVERY_BREAKER_FAILURES": "1000000",
	}
	d := b.dur(10*time.Second, 3*time.Second)
	const perTick, tick = 2, 10 * time.Millisecond
	ids := int(d/tick)*perTick + 100*perTick
	at := a.reset(ids, false)
	bt := bb.reset(ids, false)
	w, err := startWebhookd(ctx, b.bin, b.logDir, st, env)
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			w.terminate()
		}
	}()
	sr, err := produceSteady(ctx, b.svc.Brokers, st.Topic, perTick, tick, d)
	if err != nil {
		return err
	}
	waitErr := b.await(ctx, res.Name, phase{bt}, sr.Events, 60*time.Second, w, nil)
	time.Sleep(2 * time.Second) // A's deferrals land, late duplicates show
	w.snapshot()
	stopped = true
	stats := w.terminate()

	// When each of B's retries was due: its first retry record's not_before.
	subA, subB := "bench-"+res.Name+"-1", "bench-"+res.Name+"-2"
	due := map[int64]int64{} // seq → not_before, wall nanos
	retries := newRecordTally()
	rctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, topic := range delivery.RetryTopics(st.RetryTopic) {
		err := st.readRecords(rctx, topic, func(r delivery.Record) error {
			retries.add(r)
			if r.SubscriptionID != subB || r.Attempts != 1 {
				return nil
			}
			if seq, _, ok := parseBenchID(r.RequestID); ok {
				if _, seen := due[seq]; !seen {
					due[seq] = r.NotBefore.UnixNano()
				}
			}
			return nil
		})
		if err != nil {
			res.note("retry records of %s not read: %v", topic, err)
		}
	}
	var late, gapLess []int64
	arrivals := bt.arrivalsByID()
	missingDue := 0
	for seq, arr := range arrivals {
		if arr.n < 2 {
			continue
		}
		gapLess = append(gapLess, arr.second-arr.first-int64(backoff))
		nb, ok := due[seq]
		if !ok {
			missingDue++
			continue
		}
		late = append(late, arr.second-nb)
	}
	res.add("produced", float64(sr.Events)/sr.Duration.Seconds(), "events/s", "%.0f events/s")
	if len(late) > 0 {
		l := newDist(late)
		res.add("B retry lateness p50 (arrival − not_before)", msOf(l.q(0.5)), "ms", "%.0f ms")
		res.add("B retry lateness p99", msOf(l.q(0.99)), "ms", "%.0f ms").atMost(1000, "1000 ms")
		res.add("B retry lateness max", msOf(l.max()), "ms", "%.0f ms").atMost(1000, "1000 ms")
	} else {
		res.note("no retry lateness samples: B's first retry records were not found")
	}
	if len(gapLess) > 0 {
		g := newDist(gapLess)
		res.add("B second − first arrival − 1 s backoff, p50", msOf(g.q(0.5)), "ms", "%.0f ms")
		res.add("B second − first arrival − 1 s backoff, p99", msOf(g.q(0.99)), "ms", "%.0f ms")
		res.add("B second − first arrival − 1 s backoff, max", msOf(g.max()), "ms", "%.0f ms")
	}
	res.note("webhookd with WEBHOOKD_DELIVERY_RETRY_MAX_ATTEMPTS=5, WEBHOOKD_DELIVERY_RETRY_MIN_BACKOFF=%s (retry.on default: 5xx included); %d events in %.1f s (%d every %s) to 2 subscriptions",
		backoff, sr.Events, sr.Duration.Seconds(), perTick, tick)
	res.note("lateness = B's second arrival − the not_before of its first retry record (read back from the retry topic and all its tiers), %d ids (%d with a second arrival but no record found); the first backoff has full jitter (uniform in [0, %s]), so second − first − %s is the brief's figure but mixes the jitter in (negative when early)",
		len(late), missingDue, backoff, backoff)
	b.checkComplete(res, phase{bt}, sr.Events)
	res.add("A: requests sent", float64(at.requests.Load()), "requests", "%.0f")
	res.add("A: deliveries written to the retry topics", float64(retries.bySub[subA]), "records", "%.0f")
	if dt, err := b.deadLetters(st); err != nil {
		res.note("dead letters not read: %v", err)
	} else {
		res.add("A: dead-lettered", float64(dt.bySub[subA]), "records", "%.0f").atMost(0, "0")
		res.add("B: dead-lettered", float64(dt.bySub[subB]), "records", "%.0f").atMost(0, "0")
		res.note("dead letters by subscription (reason): %s", dt)
	}
	res.note("retry records by subscription (last status): %s", retries)
	b.retryCounts(res, st)
	res.addProc(stats, bt.unique.Load())
	return waitErr
}

// parseBenchID reads a bench request id, "bench-<seq>-<send nanos>".
func parseBenchID(id string) (seq, sent int64, ok bool) {
	rest, found := strings.CutPrefix(id, requestIDPrefix)
	s, t, found2 := strings.Cut(rest, "-")
	if !found || !found2 {
		return 0, 0, false
	}
	seq, ok1 := atoi([]byte(s))
	sent, ok2 := atoi([]byte(t))
	return seq, sent, ok1 && ok2
}
