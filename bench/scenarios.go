package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// recvSpec describes one receiver of a scenario.
type recvSpec struct {
	name  string
	kind  receiverKind
	delay time.Duration
	tls   *receiverTLS // nil: plain HTTP
}

// receivers starts the scenario's receivers; closeAll stops them all and
// notes any that did not stop cleanly.
func (b *bench) receivers(res *scenarioResult, specs ...recvSpec) ([]*receiver, func(), error) {
	var rs []*receiver
	closeAll := func() {
		for _, r := range rs {
			if err := r.close(); err != nil {
				res.note("%v", err)
			}
		}
	}
	for _, s := range specs {
		r, err := startReceiver(s.name, s.kind, s.delay, b.clock, s.tls)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		rs = append(rs, r)
	}
	return rs, closeAll, nil
}

// scenarioSlow: one subscription whose receiver answers after delay.
func (b *bench) scenarioSlow(delay time.Duration, events int, target float64) func(context.Context, *scenarioResult) error {
	return func(ctx context.Context, res *scenarioResult) error {
		recvs, closeAll, err := b.receivers(res, recvSpec{name: "slow", kind: delayed, delay: delay})
		if err != nil {
			return err
		}
		defer closeAll()
		_, err = b.drain(ctx, res, drainSpec{events: b.n(events), receivers: recvs})
		if m := res.metric("deliveries/s"); m != nil && target > 0 {
			m.atLeast(target, fmt.Sprintf("%.0f /s", target))
		}
		res.note("1 subscription, receiver sleeps %s then answers 200; webhookd defaults", delay)
		return err
	}
}

// scenarioBacklog: 1,000,000 events × 1 fast subscription preloaded before
// webhookd starts; memory and CPU while draining it.
func (b *bench) scenarioBacklog(ctx context.Context, res *scenarioResult) error {
	recvs, closeAll, err := b.receivers(res, recvSpec{name: "backlog"})
	if err != nil {
		return err
	}
	defer closeAll()
	_, err = b.drain(ctx, res, drainSpec{events: b.n(1_000_000), receivers: recvs})
	if m := res.metric("webhookd peak RSS (100 ms samples)"); m != nil {
		m.atMost(200, "200 MB")
	}
	return err
}

// scenarioDead: a fast and a dead subscription; how fast the healthy one is
// served over a fixed window, webhookd at its defaults (30 s delivery
// timeout).
func (b *bench) scenarioDead(ctx context.Context, res *scenarioResult) error {
	recvs, closeAll, err := b.receivers(res, recvSpec{name: "healthy"}, recvSpec{name: "dead", kind: dead})
	if err != nil {
		return err
	}
	defer closeAll()
	healthy, deadR := recvs[0], recvs[1]
	window := b.dur(40*time.Second, 5*time.Second)
	events := b.n(300_000)
	if b.fastPerSub > 0 { // enough that the healthy one, alone once the dead one is cut off, cannot run dry
		events = max(events, int64(b.fastPerSub*window.Seconds()*2.5))
	}
	st, err := b.prepare(ctx, res, recvs...)
	if err != nil {
		return err
	}
	defer b.cleanup(res, st)
	pre, err := preload(ctx, b.svc.Brokers, st.Topic, events, partitions)
	if err != nil {
		return err
	}
	res.add("preload rate (kafka-go Writer, acks=all)", pre.rate(), "events/s", "%.0f events/s")
	ph := phase{healthy.reset(int(events), false)}
	deadR.reset(0, false)
	w, err := startWebhookd(ctx, b.bin, b.logDir, st, nil)
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			w.terminate()
		}
	}()
	if err := ph.waitFirst(ctx); err != nil {
		return err
	}
	first, _ := ph.window()
	end := first + int64(window)
	var perSecond []int64 // healthy deliveries in each second of the window
	prev, nextSample := int64(0), first+int64(time.Second)
	var count, elapsed int64
	printed := 0
	for {
		now := b.clock.now()
		n := ph.unique()
		if now >= nextSample {
			perSecond = append(perSecond, n-prev)
			prev, nextSample = n, nextSample+int64(time.Second)
		}
		if n >= events { // ran dry before the window ended
			_, last := ph.window()
			count, elapsed = n, last-first
			res.note("the healthy subscription ran dry %.1f s into the window: preload more events", time.Duration(elapsed).Seconds())
			break
		}
		if now >= end {
			count, elapsed = n, now-first
			break
		}
		if err := w.alive(); err != nil {
			return err
		}
		if len(perSecond) != printed && len(perSecond)%5 == 0 {
			printed = len(perSecond)
			b.progress(res.Name, "%d s into the window: %d healthy deliveries", printed, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	w.snapshot()
	held := deadR.held.Load()
	deadR.release() // the dead partner hangs up, so shutdown does not wait 30 s on it
	stopped = true
	stats := w.terminate()

	rate := float64(count) / time.Duration(elapsed).Seconds()
	res.add("healthy subscription deliveries/s", rate, "deliveries/s", "%.0f /s")
	if b.fastPerSub > 0 {
		res.add("healthy ÷ fast per-subscription rate", rate/b.fastPerSub, "ratio", "%.3f").atLeast(0.8, "0.80")
	} else {
		res.note("run with the fast scenario for the healthy ÷ fast ratio")
	}
	res.note("fixed window of %s from the first delivery to the healthy receiver; %d healthy deliveries in it (%d events preloaded); the dead receiver was sent %d requests and answered none",
		time.Duration(elapsed).Round(time.Millisecond), count, events, held)
	dups := ph.sum(func(t *tally) *atomicInt { return &t.dups })
	bad := ph.sum(func(t *tally) *atomicInt { return &t.unparsed })
	res.check("healthy deliveries counted (till shutdown)", dups == 0 && bad == 0,
		fmt.Sprintf("%d distinct, %d duplicates, %d unrecognised", ph.unique(), dups, bad), "0 duplicates, 0 unrecognised")
	res.addProc(stats, count)
	res.note("CPU per 10k counts the healthy deliveries in the window only")
	res.series(perSecond)
	return nil
}

// scenarioLatency: webhookd running, 1,000 events/s produced for 30 s, each
// carrying its send time; the receiver records arrival − send.
func (b *bench) scenarioLatency(ctx context.Context, res *scenarioResult) error {
	recvs, closeAll, err := b.receivers(res, recvSpec{name: "latency"})
	if err != nil {
		return err
	}
	defer closeAll()
	st, err := b.prepare(ctx, res, recvs...)
	if err != nil {
		return err
	}
	defer b.cleanup(res, st)
	d := b.dur(30*time.Second, 3*time.Second)
	const perTick, tick = 10, 10 * time.Millisecond
	ids := int(d/tick)*perTick + 100*perTick
	t := recvs[0].reset(ids, true)
	ph := phase{t}
	w, err := startWebhookd(ctx, b.bin, b.logDir, st, nil)
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
	waitErr := b.await(ctx, res.Name, ph, sr.Events, 60*time.Second, w, nil)
	w.snapshot()
	time.Sleep(500 * time.Millisecond)
	stopped = true
	stats := w.terminate()

	res.add("produced", float64(sr.Events)/sr.Duration.Seconds(), "events/s", "%.0f events/s")
	if sr.Late > 0 {
		res.note("producer: %d of %d ticks took longer than %s to write", sr.Late, sr.Events/perTick, tick)
	}
	lat := t.lat.samples()
	slices.Sort(lat)
	if len(lat) == 0 {
		return errors.Join(waitErr, errors.New("no latency samples"))
	}
	ms := func(q float64) float64 {
		return float64(lat[min(len(lat)-1, int(q*float64(len(lat))))]) / 1e6
	}
	res.add("latency p50", ms(0.50), "ms", "%.1f ms")
	res.add("latency p95", ms(0.95), "ms", "%.1f ms")
	res.add("latency p99", ms(0.99), "ms", "%.1f ms").atMost(50, "50 ms")
	res.add("latency max", float64(lat[len(lat)-1])/1e6, "ms", "%.1f ms")
	res.note("%d events in %.1f s (%d every %s, kafka-go Writer BatchTimeout 1 ms, acks=all); latency = arrival at the receiver − wall time just before WriteMessages, carried in request_id; %d samples",
		sr.Events, sr.Duration.Seconds(), perTick, tick, len(lat))
	b.checkComplete(res, ph, sr.Events)
	res.addProc(stats, ph.unique())
	return waitErr
}
