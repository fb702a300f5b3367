//go:build faults

package faults

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/unibo/webhookd/config"
)

// The worker is SIGKILLed five times while 30,000 events flow and restarted
// right after each kill, as Kubernetes restarts a crashed pod. Partners must
// get every event at least once, and no more duplicates than the kills can
// explain.
func TestSIGKILLLosesNothing(t *testing.T) {
	const (
		events   = 30_000
		players  = 2_000
		kills    = 5
		produced = 30 * time.Second
		subs     = 3
	)
	w := newWorld(t, subs)
	w.cfg.Consumer.CommitInterval = config.Defaults().Consumer.CommitInterval
	// Partners answer within 0-3 ms, so a kill finds deliveries in flight.
	latency := func() time.Duration { return time.Duration(rand.IntN(4)) * time.Millisecond }
	w.tally.latency.Store(&latency)

	began := time.Now()
	p := w.start()
	p.WaitReady(t, 60*time.Second)
	prod := w.produce(events, produced, players)

	// Each kill hits a worker that holds the group and is delivering: wait
	// for /readyz (a restarted worker joins only once the killed member's
	// session, 6 s, has expired), for a webhook from it, then a random
	// 0.2-1.5 s. The busiest second before the kill bounds what finished
	// since its last commit.
	boundEvents := 0
	inFlight := min(w.cfg.Consumer.MaxInFlightTotal,
		len(w.cfg.Kafka.Topics)*w.cfg.Kafka.Partitions*w.cfg.Consumer.MaxInFlight)
	for k := 1; k <= kills; k++ {
		p.WaitReady(t, 60*time.Second)
		base := w.tally.deliveries()
		deadline := time.Now().Add(10 * time.Second)
		for w.tally.deliveries() == base && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(200*time.Millisecond + rand.N(1300*time.Millisecond))
		if p.Exited() {
			t.Fatalf("webhookd pid %d exited by itself before kill %d", p.Pid(), k)
		}
		eventsPerSec := w.tally.rate(2*time.Second) / subs
		p.Kill(t)
		// Duplicates one kill can cause, in events: the messages in flight
		// (at most max_in_flight_total, or partitions × max_in_flight if
		// fewer; a message finished behind an unfinished one waits with
		// it, and partners answering in ms keep that within the window),
		// plus those finished since the last commit: one commit interval
		// of throughput. Each of them may reach all 3 subscriptions again.
		perKill := inFlight + int(math.Ceil(eventsPerSec*w.cfg.Consumer.CommitInterval.Seconds()))
		boundEvents += perKill
		t.Logf("kill %d at %5.1fs: SIGKILL pid %d after %d webhooks (%.0f events/s; duplicates this kill can cause ≤ %d events)",
			k, time.Since(began).Seconds(), p.Pid(), w.tally.deliveries(), eventsPerSec, perKill)
		p = w.start()
	}

	ids := prod.wait(t, 2*time.Minute)
	producedIn := time.Since(began)
	f, drained := w.tally.drain(t, ids, 2*time.Minute)
	p.WaitReady(t, 10*time.Second)
	w.stop(p)
	// A clean stop commits everything: the next start delivers nothing again.
	behind := w.uncommitted(t)

	t.Logf("SIGKILL ×%d: %s", kills, f)
	t.Logf("SIGKILL ×%d: event redeliveries %d (bound %d = Σ per kill of min(max_in_flight_total %d, %d partitions × max_in_flight %d) + 1 commit interval (%s) of throughput); "+
		"last event produced at %.1fs, every pair delivered %.1fs later, whole test %.1fs; SIGTERM → exit 0 with %d messages left uncommitted",
		kills, f.Redelivered, boundEvents, w.cfg.Consumer.MaxInFlightTotal, len(w.cfg.Kafka.Topics)*w.cfg.Kafka.Partitions,
		w.cfg.Consumer.MaxInFlight, w.cfg.Consumer.CommitInterval, producedIn.Seconds(), drained.Seconds(), time.Since(began).Seconds(), behind)
	if f.Lost != 0 {
		t.Fatalf("LOST %d pairs (first: %v)", f.Lost, f.Missing)
	}
	if f.Redelivered > boundEvents || f.DupPairs > subs*boundEvents {
		t.Errorf("events redelivered %d times (%d webhooks): more than %d kills can explain (≤ %d, %d webhooks)",
			f.Redelivered, f.DupPairs, kills, boundEvents, subs*boundEvents)
	}
	// Each kill can make a pair be delivered once more, no more.
	if f.MaxCopies > kills+1 {
		t.Errorf("a pair was delivered %d times: more than once per process (%d)", f.MaxCopies, kills+1)
	}
	if behind != 0 {
		t.Errorf("%d messages uncommitted after SIGTERM: a restart would deliver them again", behind)
	}
	if f.Unexpected != 0 {
		t.Errorf("%d webhooks for events nobody produced", f.Unexpected)
	}
}
