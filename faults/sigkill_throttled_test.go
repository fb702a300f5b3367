//go:build faults

package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/unibo/webhookd/config"
	"github.com/unibo/webhookd/delivery"
	"github.com/unibo/webhookd/internal/testenv"
)

// Three partners take the same events at their own pace: one rate-limits
// (429 + Retry-After: 1 past 300 requests in a second), one asks for a pause
// (503 + Retry-After: 5) for its first 15 s, one is healthy. The worker is
// SIGKILLed three times while 8,000 events flow, so it dies with endpoints
// paused and paced, deliveries deferred to the retry tiers and order chains
// open in Redis. Every partner must still get every event (duplicates are
// allowed after a kill, and counted), none dead-lettered, and each key's
// events first accepted in the order of their source partition.
func TestSIGKILLWhileThrottledPausedAndDeferred(t *testing.T) {
	const (
		events   = 8_000
		players  = 200 // even: produce puts each player's events in one topic, so one partition
		produced = 20 * time.Second
		kills    = 3
		perSec   = 300              // requests the rate-limited partner accepts per 1 s window
		pauseFor = 15 * time.Second // how long after its first request the paused partner answers 503
	)
	const limitedSub, pausedSub, healthySub = 0, 1, 2
	names := []string{"rate-limited", "paused", "healthy"}
	w := newWorld(t, len(names))
	w.cfg.Consumer.CommitInterval = config.Defaults().Consumer.CommitInterval

	var lmu sync.Mutex
	var window int64
	inWindow := 0
	w.tally.answer(limitedSub, func(r testenv.Request) int {
		lmu.Lock()
		defer lmu.Unlock()
		if s := r.At.Unix(); s != window {
			window, inWindow = s, 0
		}
		if inWindow >= perSec {
			return http.StatusTooManyRequests
		}
		inWindow++
		return http.StatusOK
	}, http.Header{"Retry-After": {"1"}})
	var firstAt atomic.Int64
	w.tally.answer(pausedSub, func(r testenv.Request) int {
		firstAt.CompareAndSwap(0, r.At.UnixNano())
		if r.At.Sub(time.Unix(0, firstAt.Load())) < pauseFor {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	}, http.Header{"Retry-After": {"5"}})

	began := time.Now()
	p := w.start()
	p.WaitReady(t, 60*time.Second)
	prod := w.produce(events, produced, players)

	// Each kill hits a worker that holds the group and is delivering, a few
	// seconds in, when its endpoints have paused, paced and deferred. Its
	// endpoint counters are read just before: they die with it.
	deferred := make([]float64, len(names))
	for k := 1; k <= kills; k++ {
		p.WaitReady(t, 60*time.Second)
		base := w.tally.deliveries()
		deadline := time.Now().Add(10 * time.Second)
		for w.tally.deliveries() == base && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(2*time.Second + rand.N(2*time.Second))
		if p.Exited() {
			t.Fatalf("webhookd pid %d exited by itself before kill %d", p.Pid(), k)
		}
		d := w.deferredPerReceiver(t, p)
		p.Kill(t)
		for i := range d {
			deferred[i] += d[i]
		}
		t.Logf("kill %d at %5.1fs: SIGKILL pid %d after %d webhooks accepted; it had deferred %v (rate-limited, paused, healthy)",
			k, time.Since(began).Seconds(), p.Pid(), w.tally.deliveries(), d)
		p = w.start()
	}

	ids := prod.wait(t, 2*time.Minute)
	producedIn := time.Since(began)
	drainStart := time.Now()
	for w.tally.figures(ids).Lost != 0 && time.Since(drainStart) < 90*time.Second {
		time.Sleep(200 * time.Millisecond)
	}
	drained := time.Since(drainStart)
	time.Sleep(2 * time.Second) // late duplicates
	f := w.tally.figures(ids)
	p.WaitReady(t, 10*time.Second)
	d := w.deferredPerReceiver(t, p)
	for i := range d {
		deferred[i] += d[i]
	}
	w.stop(p)
	behind := w.uncommitted(t)

	var dead []delivery.Record
	if _, err := delivery.ReadDeadLetters(context.Background(), w.cfg, delivery.DeadLetterFilter{},
		func(r delivery.Record) error { dead = append(dead, r); return nil }); err != nil {
		t.Fatalf("read dead letters: %v", err)
	}
	src := w.sourceOrder(t)
	var tiers map[[2]string][]string // read only to explain an order failure

	t.Logf("SIGKILL ×%d with partners throttling and pausing: %s; last event produced at %.1fs, every pair delivered %.1fs later, whole test %.1fs; "+
		"%d dead letters; SIGTERM → exit 0 with %d messages left uncommitted",
		kills, f, producedIn.Seconds(), drained.Seconds(), time.Since(began).Seconds(), len(dead), behind)
	for s, name := range names {
		r := w.receiverFigures(s, ids, src)
		paused, throttled := w.endpointLogLines(s, "endpoint paused"), w.endpointLogLines(s, "endpoint throttled")
		t.Logf("%-12s delivered %d/%d, missing %d, duplicates %d (%d events more than once), refused %v, deferred %.0f (metrics before each kill and the stop), "+
			"log lines: paused %d, throttled %d; keys first accepted out of order: %d of %d",
			name, r.delivered, len(ids), r.missing, r.dups, r.dupEvents, r.refused, deferred[s], paused, throttled, len(r.disorder), len(src.ids))
		if r.missing != 0 {
			t.Errorf("LOST: %s never accepted %d events (first: %v)", name, r.missing, r.missingIDs)
		}
		if len(r.disorder) != 0 {
			t.Errorf("ORDER: %s accepted %d keys' events out of their source order", name, len(r.disorder))
			if tiers == nil {
				tiers = w.tierRecords(t)
			}
			for _, d := range r.disorder[:min(len(r.disorder), 3)] {
				t.Errorf("ORDER: %s, %v; %s's records in the retry tiers: %v; webhookd's log lines about it: %v",
					name, d, d.overtook, tiers[[2]string{w.subs[s].ID, d.overtook}], w.linesAbout(s, d.overtook))
			}
		}
		switch s {
		case limitedSub:
			if r.refused[http.StatusTooManyRequests] == 0 || throttled == 0 || deferred[s] == 0 {
				t.Errorf("%s: %d 429s answered, %d throttled log lines, %.0f deferred: the test never rate-limited webhookd nor made it defer",
					name, r.refused[http.StatusTooManyRequests], throttled, deferred[s])
			}
		case pausedSub:
			if r.refused[http.StatusServiceUnavailable] == 0 || paused == 0 || deferred[s] == 0 {
				t.Errorf("%s: %d 503s answered, %d paused log lines, %.0f deferred: the test never paused webhookd nor made it defer",
					name, r.refused[http.StatusServiceUnavailable], paused, deferred[s])
			}
		case healthySub:
			if len(r.refused) != 0 {
				t.Errorf("%s refused %v", name, r.refused)
			}
		}
	}
	if len(dead) != 0 {
		first := dead[0]
		t.Errorf("%d deliveries dead-lettered, want none; first: subscription %s request %s reason %s last status %d",
			len(dead), first.SubscriptionID, first.RequestID, first.Reason, first.LastStatus)
	}
	if f.Unexpected != 0 {
		t.Errorf("%d webhooks for events nobody produced", f.Unexpected)
	}
	if behind != 0 {
		t.Errorf("%d messages uncommitted after SIGTERM: a restart would deliver them again", behind)
	}
}

// deferredPerReceiver reads webhookd_endpoint_deferred_total of each
// receiver's endpoint from p's /metrics.
func (w *world) deferredPerReceiver(t *testing.T, p *testenv.Process) []float64 {
	t.Helper()
	resp, err := http.Get("http://" + p.OpsAddr + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read /metrics: %v", err)
	}
	out := make([]float64, len(w.tally.urls))
	for _, line := range strings.Split(string(body), "\n") {
		series, value, ok := strings.Cut(line, " ")
		if !ok || !strings.HasPrefix(series, "webhookd_endpoint_deferred_total{") {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		for i, u := range w.tally.urls {
			if strings.Contains(series, `"`+u+`"`) || strings.Contains(series, hostOf(t, u)+`"`) {
				out[i] += v
			}
		}
	}
	return out
}

// endpointLogLines counts the log lines msg of every webhookd process about
// receiver sub's endpoint.
func (w *world) endpointLogLines(sub int, msg string) int {
	host := hostOf(w.t, w.tally.urls[sub])
	n := 0
	for _, p := range w.procs {
		for _, l := range logLines(p, msg) {
			if ep, _ := l["endpoint"].(string); strings.HasSuffix(ep, "//"+host) {
				n++
			}
		}
	}
	return n
}

func hostOf(t *testing.T, raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("receiver URL %q: %v", raw, err)
	}
	return u.Host
}

// sources is the order of the events in their source partitions: each
// key's request ids in offset order.
type sources struct {
	ids   map[string][]string // key (topic/partition/player) → request ids in offset order
	keyOf map[string]string   // request id → key
}

// sourceOrder reads the world's source topics back from Kafka.
func (w *world) sourceOrder(t *testing.T) sources {
	t.Helper()
	s := sources{ids: map[string][]string{}, keyOf: map[string]string{}}
	for _, topic := range w.cfg.Kafka.Topics {
		for _, m := range readAll(t, w.cfg, topic) {
			var v struct {
				RequestID string `json:"request_id"`
			}
			if err := json.Unmarshal(m.Value, &v); err != nil {
				t.Fatalf("%s/%d@%d: %v", topic, m.Partition, m.Offset, err)
			}
			key := fmt.Sprintf("%s/%d/%s", topic, m.Partition, m.Key)
			s.ids[key] = append(s.ids[key], v.RequestID)
			s.keyOf[v.RequestID] = key
		}
	}
	return s
}

// receiver is what one receiver accepted of the events.
type receiver struct {
	delivered, missing, dups, dupEvents int
	missingIDs                          []string
	refused                             map[int]int
	// disorder is each key whose events were first accepted in another
	// order than their source partition's.
	disorder []disorder
}

// disorder is one key's events first accepted out of their source order.
type disorder struct {
	key      string
	at       int      // index of the first event accepted out of place
	want     []string // the source order around it
	got      []string // the first acceptances around it
	overtook string   // the event first accepted there instead
	copies   []string // every acceptance of the key's events, in arrival order
}

func (d disorder) String() string {
	return fmt.Sprintf("%s: from its event #%d, source order %v, first accepted %v (%s overtook %s); every acceptance of the key: %v",
		d.key, d.at+1, d.want, d.got, d.overtook, d.want[min(2, d.at)], d.copies)
}

// receiverFigures compares what receiver sub accepted with the events ids:
// each event's first acceptance, per key, must follow the source order.
func (w *world) receiverFigures(sub int, ids []string, src sources) receiver {
	accepted, refused := w.tally.arrivals(sub)
	r := receiver{refused: refused}
	copies := map[string]int{}
	firsts := map[string][]string{} // key → request ids in order of first acceptance
	for _, id := range accepted {
		copies[id]++
		if copies[id] == 1 {
			firsts[src.keyOf[id]] = append(firsts[src.keyOf[id]], id)
		}
	}
	for _, id := range ids {
		switch n := copies[id]; {
		case n == 0:
			r.missing++
			if len(r.missingIDs) < 10 {
				r.missingIDs = append(r.missingIDs, id+" ("+src.keyOf[id]+")")
			}
		default:
			r.delivered++
			if n > 1 {
				r.dups += n - 1
				r.dupEvents++
			}
		}
	}
	for key, want := range src.ids {
		// Events never accepted are reported as lost; order is judged on
		// those that were.
		var arrived []string
		for _, id := range want {
			if copies[id] > 0 {
				arrived = append(arrived, id)
			}
		}
		got := firsts[key]
		for i := range arrived {
			if i >= len(got) || got[i] != arrived[i] {
				lo, hi := max(i-2, 0), min(i+4, len(arrived))
				d := disorder{key: key, at: i, want: arrived[lo:hi], got: got[min(lo, len(got)):min(hi, len(got))]}
				if i < len(got) {
					d.overtook = got[i]
				}
				for _, id := range accepted {
					if src.keyOf[id] == key {
						d.copies = append(d.copies, id)
					}
				}
				r.disorder = append(r.disorder, d)
				break
			}
		}
	}
	slices.SortFunc(r.disorder, func(a, b disorder) int { return strings.Compare(a.key, b.key) })
	return r
}

// tierRecords reads back every record of the retry topic and its delay
// tiers, by (subscription id, request id), each described by when and
// where it was written and its place in its chain, oldest first.
func (w *world) tierRecords(t *testing.T) map[[2]string][]string {
	t.Helper()
	out := map[[2]string][]string{}
	for _, topic := range delivery.RetryTopics(w.cfg.Delivery.Retry.Topic) {
		for _, m := range readAll(t, w.cfg, topic) {
			rec, err := delivery.DecodeRecord(m.Value)
			if err != nil {
				t.Fatalf("%s/%d@%d: %v", topic, m.Partition, m.Offset, err)
			}
			prev := "none"
			if rec.ChainPrev != nil {
				prev = strconv.FormatInt(*rec.ChainPrev, 10)
			}
			k := [2]string{rec.SubscriptionID, rec.RequestID}
			out[k] = append(out[k], fmt.Sprintf("%s %s@%d (source offset %d, deferrals %d, first deferred %s, chain_prev %s, chain_waits %d)",
				m.Time.Format("15:04:05.000"), topic, m.Offset, rec.Source.Offset,
				rec.Deferrals, rec.FirstDeferredAt.Format("15:04:05.000"), prev, rec.ChainWaits))
		}
	}
	for _, recs := range out {
		slices.Sort(recs) // by the time written
	}
	return out
}

// linesAbout is every webhookd log line about request id of subscription
// sub, each prefixed with its process's pid.
func (w *world) linesAbout(sub int, id string) []string {
	var out []string
	for _, p := range w.procs {
		for _, line := range strings.Split(p.Output(), "\n") {
			if strings.Contains(line, `"request_id":"`+id+`"`) && strings.Contains(line, `"subscription_id":"`+w.subs[sub].ID+`"`) {
				out = append(out, fmt.Sprintf("pid %d: %s", p.Pid(), testenv.Tail(line, 1)))
			}
		}
	}
	return out
}
