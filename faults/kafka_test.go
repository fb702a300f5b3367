//go:build faults

package faults

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// The broker is stopped for 10 s mid-stream and started again. The worker,
// never restarted, rejoins by itself and delivers every event produced
// before the stop and after the restart (the producer retries meanwhile).
func TestKafkaBrokerRestartRecoversByItself(t *testing.T) {
	w := newWorld(t, 2)
	began := time.Now()
	p := w.start()
	p.WaitReady(t, 60*time.Second)
	const events = 8_000
	prod := w.produce(events, 40*time.Second, 500) // 200 events/s, retrying while the broker is down
	time.Sleep(5 * time.Second)

	beforeStop := len(prod.ids())
	downTook := stopService(t, "kafka", w.env.Brokers[0])
	stoppedAt := time.Now()
	states := map[string]int{}
	for time.Since(stoppedAt) < 10*time.Second {
		r := readyz(p)
		states[fmt.Sprintf("%d kafka ok=%v", r.Code, r.OK["kafka"])]++
		if p.Exited() {
			t.Fatalf("webhookd exited while the broker was down")
		}
		time.Sleep(250 * time.Millisecond)
	}
	during := len(prod.ids()) - beforeStop
	upTook := service(t, "up", "kafka")
	upAt := time.Now()
	ready := waitFor(t, 90*time.Second, "webhookd ready again, by itself", func() bool {
		return readyz(p).Code == http.StatusOK
	})
	// The first event acknowledged after the worker is ready again; on a
	// broker slow to restart (thousands of partitions to load) the producer
	// may have got its last event acknowledged by then: that one, then.
	first := min(len(prod.ids()), events-1)
	waitFor(t, 90*time.Second, "the first event produced after the restart to be delivered", func() bool {
		ids := prod.ids()
		return len(ids) > first && w.tally.figures(ids[first:first+1]).Lost == 0
	})
	firstAfter := time.Since(upAt)

	ids := prod.wait(t, 2*time.Minute)
	f, drained := w.tally.drain(t, ids, 2*time.Minute)
	w.stop(p)
	joins := len(logLines(p, "joined consumer group"))
	t.Logf("Kafka stopped (services-down %.1fs) for 10s, started again (services-up %.1fs): %d events acked before the stop, %d more until the broker was gone; "+
		"/readyz while down %v; ready again %.1fs after the broker answered, first post-restart event delivered after %.1fs; %d group generations joined; producer retried %d times",
		downTook.Seconds(), upTook.Seconds(), beforeStop, during, states, ready.Seconds(), firstAfter.Seconds(), joins, prod.retries.Load())
	t.Logf("Kafka restart: %s; every pair delivered %.1fs after the last was produced; whole test %.1fs", f, drained.Seconds(), time.Since(began).Seconds())
	if f.Lost != 0 {
		t.Fatalf("LOST %d pairs (first: %v)", f.Lost, f.Missing)
	}
	if joins < 2 {
		t.Errorf("%d \"joined consumer group\" lines: the worker should have rejoined after the broker came back", joins)
	}
}
