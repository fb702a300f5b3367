//go:build faults

// Package faults is webhookd's fault suite: the real binary, on the REAL
// Kafka and Redis, while a test SIGKILLs it, pauses or stops Redis, stops
// the broker or feeds it garbage, and then counts what partners received.
// It stops and restarts the shared services (scripts/services-down.sh NAME,
// scripts/services-up.sh NAME), so it never runs with `go test ./...` (build
// tag faults) and its tests never run in parallel: `make test-faults`.
package faults

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/unibo/webhookd/config"
	"github.com/unibo/webhookd/event"
	"github.com/unibo/webhookd/internal/testenv"
	"github.com/unibo/webhookd/subscriptions"
)

const tenant = "acme"

func TestMain(m *testing.M) {
	if realServices() {
		fmt.Printf("faults: REAL backends: Kafka %s, Redis %s (these tests stop and restart them)\n",
			os.Getenv("WEBHOOKD_TEST_KAFKA_BROKERS"), os.Getenv("WEBHOOKD_TEST_REDIS_ADDR"))
	} else {
		fmt.Println("faults: !!! NOT RUN: every fault test needs the REAL Kafka and Redis: " +
			"make services-up, then set WEBHOOKD_TEST_KAFKA_BROKERS and WEBHOOKD_TEST_REDIS_ADDR")
	}
	code := m.Run()
	testenv.RemoveBinary()
	os.Exit(code)
}

func realServices() bool {
	return os.Getenv("WEBHOOKD_TEST_KAFKA_BROKERS") != "" && os.Getenv("WEBHOOKD_TEST_REDIS_ADDR") != ""
}

// world is one fault test's services, configuration, subscriptions and
// partner endpoints.
type world struct {
	t     *testing.T
	env   testenv.Env
	cfg   config.Config
	store *subscriptions.Store
	subs  []subscriptions.Subscription
	tally *tally
	bin   string
	procs []*testenv.Process
}

// newWorld skips the test unless the real services are configured, and
// subscribes one endpoint per receiver, all of tenant acme, to every event
// type. Topics (6 partitions each) are created before anything runs.
func newWorld(t *testing.T, receivers int) *world {
	t.Helper()
	if !realServices() {
		t.Skip("!!! FAULT TEST SKIPPED: it needs the REAL Kafka and Redis (make services-up; " +
			"WEBHOOKD_TEST_KAFKA_BROKERS=127.0.0.1:9092 WEBHOOKD_TEST_REDIS_ADDR=127.0.0.1:6379 make test-faults)")
	}
	env := testenv.Start(t)
	if !env.Real {
		t.Fatal("fault tests must not run on the embedded services")
	}
	cfg := env.Config(t)
	cfg.Log.Level = "info" // debug logs every delivery
	cfg.Kafka.Partitions = 6
	rdb, err := subscriptions.NewRedisClient(cfg.Redis)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	w := &world{t: t, env: env, cfg: cfg, store: subscriptions.NewStore(rdb, cfg.Redis.KeyPrefix), bin: testenv.Binary(t)}
	w.tally = newTally(t, receivers)
	for _, url := range w.tally.urls {
		sub, err := w.store.Add(context.Background(), subscriptions.Subscription{
			TenantID: tenant, URL: url, EventTypes: event.Types[:], Enabled: true,
		})
		if err != nil {
			t.Fatalf("add subscription: %v", err)
		}
		w.subs = append(w.subs, sub)
	}
	testenv.CreateTopics(t, cfg)
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, p := range w.procs {
			t.Logf("----- last lines of webhookd pid %d -----\n%s", p.Pid(), testenv.Tail(p.Output(), 40))
		}
	})
	return w
}

// start runs the binary on the world's configuration; it does not wait for
// readiness.
func (w *world) start() *testenv.Process {
	w.t.Helper()
	p := testenv.StartBinary(w.t, w.bin, testenv.BinaryEnv(w.t, w.cfg))
	w.procs = append(w.procs, p)
	return p
}

// stop sends SIGTERM and requires exit code 0, as Kubernetes expects.
func (w *world) stop(p *testenv.Process) {
	w.t.Helper()
	code, err := p.Terminate(30 * time.Second)
	if err != nil || code != 0 {
		w.t.Fatalf("webhookd after SIGTERM: exit code %d, %v\n%s", code, err, testenv.Tail(p.Output(), 30))
	}
}

// ---------------------------------------------------------------- partners

// tally counts what each partner endpoint received, per request_id: the
// requests it accepted (2xx) and, apart, those it refused.
type tally struct {
	urls []string
	rcs  []*testenv.Receiver
	// Latency, when set, is how long a receiver takes to answer.
	latency atomic.Pointer[func() time.Duration]
	// answers[i], when set, decides receiver i's status (200 otherwise).
	answers []atomic.Pointer[func(testenv.Request) int]

	mu       sync.Mutex
	got      []map[string]int // per subscription: request_id → deliveries accepted
	accepted [][]string       // per subscription: request_ids accepted, in arrival order
	refused  []map[int]int    // per subscription: status → requests refused
	torn     int              // bodies without a request_id (a request cut by a kill)
	total    int
	perTick  map[int64]int // deliveries per 100 ms, for rates
}

func newTally(t *testing.T, receivers int) *tally {
	tl := &tally{perTick: map[int64]int{}, answers: make([]atomic.Pointer[func(testenv.Request) int], receivers)}
	for i := range receivers {
		tl.got = append(tl.got, map[string]int{})
		tl.accepted = append(tl.accepted, nil)
		tl.refused = append(tl.refused, map[int]int{})
		rc := testenv.NewReceiver(t)
		rc.SetRespond(func(r testenv.Request) int {
			status := http.StatusOK
			if f := tl.answers[i].Load(); f != nil {
				status = (*f)(r)
			}
			tl.record(i, r, status)
			if f := tl.latency.Load(); f != nil {
				time.Sleep((*f)())
			}
			return status
		})
		tl.urls = append(tl.urls, rc.URL)
		tl.rcs = append(tl.rcs, rc)
	}
	return tl
}

// answer makes receiver sub answer with the status f returns, and with
// header on every answer (webhookd reads a Retry-After only on 429 and 503).
func (tl *tally) answer(sub int, f func(testenv.Request) int, header http.Header) {
	tl.answers[sub].Store(&f)
	tl.rcs[sub].SetHeader(func(testenv.Request) http.Header { return header })
}

func (tl *tally) record(sub int, r testenv.Request, status int) {
	var body struct {
		RequestID string `json:"request_id"`
	}
	err := json.Unmarshal(r.Body, &body)
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if status < 200 || status > 299 {
		tl.refused[sub][status]++
		return
	}
	tl.total++
	tl.perTick[r.At.UnixMilli()/100]++
	if err != nil || body.RequestID == "" {
		tl.torn++
		return
	}
	tl.got[sub][body.RequestID]++
	tl.accepted[sub] = append(tl.accepted[sub], body.RequestID)
}

// arrivals is what receiver sub accepted so far, in arrival order, and the
// requests it refused per status.
func (tl *tally) arrivals(sub int) ([]string, map[int]int) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return slices.Clone(tl.accepted[sub]), maps.Clone(tl.refused[sub])
}

// deliveries is the number of webhooks accepted so far, all endpoints.
func (tl *tally) deliveries() int {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return tl.total
}

// rate is the highest number of webhooks per second received over any 1 s
// window that ended within the last `within`.
func (tl *tally) rate(within time.Duration) float64 {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	now := time.Now().UnixMilli() / 100
	best := 0
	for end := now - int64(within/(100*time.Millisecond)); end <= now; end++ {
		n := 0
		for k := end - 9; k <= end; k++ {
			n += tl.perTick[k]
		}
		best = max(best, n)
	}
	return float64(best)
}

// figures is what partners saw of a set of events.
type figures struct {
	Events    int // events acknowledged by Kafka
	Pairs     int // (event, subscription) pairs that must be delivered
	Delivered int // webhooks received for those pairs, duplicates included
	Lost      int // pairs never delivered
	DupPairs  int // extra deliveries of a pair beyond its first
	DupEvents int // events delivered more than once to some subscription
	MaxCopies int // most deliveries of one pair
	// Redelivered counts each event once per extra time it went out:
	// the sum over events of (most deliveries to one subscription - 1).
	Redelivered int
	Unexpected  int // webhooks whose request_id is not one of the events
	Torn        int // bodies without a request_id
	Missing     []string
}

func (f figures) String() string {
	return fmt.Sprintf("%d events × subscriptions = %d pairs: lost %d, duplicated %d (%d events redelivered %d times, one pair at most %d×), delivered %d webhooks, unexpected %d, torn %d",
		f.Events, f.Pairs, f.Lost, f.DupPairs, f.DupEvents, f.Redelivered, f.MaxCopies, f.Delivered, f.Unexpected, f.Torn)
}

// figures compares what arrived with the events ids.
func (tl *tally) figures(ids []string) figures {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	f := figures{Events: len(ids), Pairs: len(ids) * len(tl.got), Torn: tl.torn}
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	for _, id := range ids {
		dup, most := false, 0
		for s, got := range tl.got {
			n := got[id]
			f.Delivered += n
			f.MaxCopies = max(f.MaxCopies, n)
			most = max(most, n)
			if n == 0 {
				f.Lost++
				if len(f.Missing) < 10 {
					f.Missing = append(f.Missing, fmt.Sprintf("%s→sub%d", id, s))
				}
			}
			if n > 1 {
				f.DupPairs += n - 1
				dup = true
			}
		}
		if dup {
			f.DupEvents++
			f.Redelivered += most - 1
		}
	}
	for _, got := range tl.got {
		for id, n := range got {
			if !want[id] {
				f.Unexpected += n
			}
		}
	}
	return f
}

// drain waits until every pair of ids has been delivered, then a little
// longer for late duplicates, and returns the figures and how long the
// wait took. It fails the test, with the figures, after timeout.
func (tl *tally) drain(t *testing.T, ids []string, timeout time.Duration) (figures, time.Duration) {
	t.Helper()
	start := time.Now()
	for {
		f := tl.figures(ids)
		if f.Lost == 0 {
			took := time.Since(start)
			time.Sleep(2 * time.Second)
			return tl.figures(ids), took
		}
		if time.Since(start) > timeout {
			t.Fatalf("LOST: %d pairs still undelivered %s after the producer finished (first: %v); %s",
				f.Lost, timeout, f.Missing, f)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// ---------------------------------------------------------------- producing

// payout is a valid PRIZE_PAYOUT_SUCCEEDED, identified by its request id.
func payout(requestID, player string) []byte {
	return fmt.Appendf(nil, `{"tenant_id":%q,"event_type":"PRIZE_PAYOUT_SUCCEEDED","campaign_id":"faults-2025","request_id":%q,`+
		`"player_id":%q,"player_currency":"EUR","status":"SUCCESS","prize_type":"cash","amount":10.50,"bonus_id":7}`,
		tenant, requestID, player)
}

// producer publishes payout events to the world's topics at a steady rate,
// keyed by player, and remembers which ones the broker acknowledged. While
// the broker is down it keeps retrying, then catches up.
type producer struct {
	w       *kafka.Writer
	retries atomic.Int64
	done    chan struct{}
	cancel  context.CancelFunc

	mu    sync.Mutex
	acked []string
	err   error
}

// produce publishes n events over about `over`, keys spread over players.
func (w *world) produce(n int, over time.Duration, players int) *producer {
	prefix := "req-" + testenv.ID()
	kw := &kafka.Writer{
		Addr:            kafka.TCP(w.cfg.Kafka.Brokers...),
		Balancer:        &kafka.Hash{},
		RequiredAcks:    kafka.RequireAll,
		BatchTimeout:    2 * time.Millisecond,
		BatchSize:       1000,
		MaxAttempts:     3,
		WriteBackoffMin: 100 * time.Millisecond,
		WriteBackoffMax: 500 * time.Millisecond,
		Transport:       &kafka.Transport{DialTimeout: 2 * time.Second, MetadataTTL: 2 * time.Second},
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &producer{w: kw, done: make(chan struct{}), cancel: cancel}
	w.t.Cleanup(func() { cancel(); <-p.done; _ = kw.Close() })

	const tick = 50 * time.Millisecond
	ticks := max(int(over/tick), 1)
	go func() {
		defer close(p.done)
		start := time.Now()
		next := 0
		for k := 1; k <= ticks; k++ {
			end := n * k / ticks
			var msgs []kafka.Message
			for i := next; i < end; i++ {
				player := fmt.Sprintf("player-%04d", i%players)
				msgs = append(msgs, kafka.Message{
					Topic: w.cfg.Kafka.Topics[i%len(w.cfg.Kafka.Topics)], Key: []byte(player),
					Value: payout(fmt.Sprintf("%s-%06d", prefix, i), player),
				})
			}
			next = end
			if err := p.write(ctx, msgs); err != nil {
				p.mu.Lock()
				p.err = err
				p.mu.Unlock()
				return
			}
			if d := time.Until(start.Add(time.Duration(k) * tick)); d > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(d):
				}
			}
		}
	}()
	return p
}

// write publishes msgs, retrying the unacknowledged ones until ctx ends.
func (p *producer) write(ctx context.Context, msgs []kafka.Message) error {
	for len(msgs) > 0 {
		attempt, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := p.w.WriteMessages(attempt, msgs...)
		cancel()
		var failed []kafka.Message
		var werrs kafka.WriteErrors
		for i, m := range msgs {
			switch {
			case err == nil, errors.As(err, &werrs) && werrs[i] == nil:
				var v struct {
					RequestID string `json:"request_id"`
				}
				_ = json.Unmarshal(m.Value, &v)
				p.mu.Lock()
				p.acked = append(p.acked, v.RequestID)
				p.mu.Unlock()
			default:
				failed = append(failed, m)
			}
		}
		msgs = failed
		if len(msgs) == 0 {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("producer stopped with %d events unacknowledged: %w", len(msgs), err)
		}
		p.retries.Add(1)
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
	return nil
}

// wait waits until every event is acknowledged and returns their ids.
func (p *producer) wait(t *testing.T, timeout time.Duration) []string {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.cancel()
		<-p.done
		t.Fatalf("producer not done within %s (%d acknowledged)", timeout, len(p.ids()))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		t.Fatal(p.err)
	}
	return slices.Clone(p.acked)
}

func (p *producer) ids() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.acked)
}

// uncommitted is how many messages of the world's topics lie beyond the
// group's committed offsets.
func (w *world) uncommitted(t *testing.T) int64 {
	t.Helper()
	client := &kafka.Client{Addr: kafka.TCP(w.cfg.Kafka.Brokers...), Timeout: 10 * time.Second, Transport: &kafka.Transport{}}
	ctx := context.Background()
	parts := make([]int, w.cfg.Kafka.Partitions)
	for i := range parts {
		parts[i] = i
	}
	fetch := &kafka.OffsetFetchRequest{GroupID: w.cfg.Kafka.GroupID, Topics: map[string][]int{}}
	list := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for _, topic := range w.cfg.Kafka.Topics {
		fetch.Topics[topic] = parts
		for _, p := range parts {
			list.Topics[topic] = append(list.Topics[topic], kafka.LastOffsetOf(p))
		}
	}
	committed, err := client.OffsetFetch(ctx, fetch)
	if err != nil {
		t.Fatalf("offset fetch: %v", err)
	}
	ends, err := client.ListOffsets(ctx, list)
	if err != nil {
		t.Fatalf("list offsets: %v", err)
	}
	var behind int64
	for topic, ps := range ends.Topics {
		for _, p := range ps {
			c := int64(0)
			for _, cp := range committed.Topics[topic] {
				if cp.Partition == p.Partition && cp.CommittedOffset > 0 {
					c = cp.CommittedOffset
				}
			}
			behind += p.LastOffset - c
		}
	}
	return behind
}

// ---------------------------------------------------------------- services

// service runs scripts/services-<action>.sh NAME (action up or down) on the
// ports of the test services, and returns how long it took.
func service(t *testing.T, action, name string) time.Duration {
	t.Helper()
	start := time.Now()
	cmd := exec.Command(filepath.Join("..", "scripts", "services-"+action+".sh"), name)
	cmd.Env = append(os.Environ(), "KAFKA_PORT="+port(t, os.Getenv("WEBHOOKD_TEST_KAFKA_BROKERS")),
		"REDIS_PORT="+port(t, os.Getenv("WEBHOOKD_TEST_REDIS_ADDR")))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("services-%s.sh %s: %v\n%s", action, name, err, out)
	}
	t.Logf("services-%s.sh %s: %s in %s", action, name, strings.TrimSpace(lastLine(string(out))), time.Since(start).Round(10*time.Millisecond))
	return time.Since(start)
}

// stopService stops one real service and makes sure it is started again
// when the test ends, whatever happens in between.
func stopService(t *testing.T, name, addr string) time.Duration {
	t.Helper()
	t.Cleanup(func() { service(t, "up", name) })
	took := service(t, "down", name)
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		_ = c.Close()
		t.Fatalf("%s at %s still answers after services-down.sh %s: it was not started by scripts/services-up.sh, "+
			"and these tests only stop services they can start again", name, addr, name)
	}
	return took
}

func port(t *testing.T, addrs string) string {
	_, p, err := net.SplitHostPort(strings.Split(addrs, ",")[0])
	if err != nil {
		t.Fatalf("address %q: %v", addrs, err)
	}
	return p
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// logLines returns the process's JSON log lines whose msg is msg, or
// starts with it when msg ends with "…".
func logLines(p *testenv.Process, msg string) []map[string]any {
	prefix, isPrefix := strings.CutSuffix(msg, "…")
	var out []map[string]any
	for _, line := range strings.Split(p.Output(), "\n") {
		if !strings.Contains(line, prefix) {
			continue
		}
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		if got, _ := m["msg"].(string); got == msg || isPrefix && strings.HasPrefix(got, prefix) {
			out = append(out, m)
		}
	}
	return out
}

// readiness is /readyz parsed: status code and each check's detail.
type readiness struct {
	Code   int
	Ready  bool
	Checks map[string]string
	OK     map[string]bool
}

func readyz(p *testenv.Process) readiness {
	code, body := p.Readyz()
	r := readiness{Code: code, Checks: map[string]string{}, OK: map[string]bool{}}
	var doc struct {
		Ready  bool `json:"ready"`
		Checks []struct {
			Name   string `json:"name"`
			OK     bool   `json:"ok"`
			Detail string `json:"detail"`
		} `json:"checks"`
	}
	if json.Unmarshal([]byte(body), &doc) == nil {
		r.Ready = doc.Ready
		for _, c := range doc.Checks {
			r.Checks[c.Name], r.OK[c.Name] = c.Detail, c.OK
		}
	}
	return r
}

// waitFor polls cond every 50 ms until it holds, or fails the test after
// timeout saying what it was waiting for.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}
