//go:build faults

package faults

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/unibo/webhookd/internal/testenv"
)

const (
	redisDownWarning = "cannot refresh the subscription table from Redis; serving the last good table until it recovers"
	redisBackInfo    = "Redis reachable again; subscription table is being kept fresh"
)

// outage is what partners and /readyz showed during a Redis outage.
type outage struct {
	delivered   int            // webhooks received during the outage
	notReady    int            // samples where /readyz did not answer 200
	unreachable int            // samples where the redis check said unreachable
	details     map[string]int // redis check details seen
}

// watchOutage samples /readyz every 100 ms for d and counts the webhooks
// received meanwhile.
func watchOutage(p *testenv.Process, tl *tally, d time.Duration) outage {
	o := outage{details: map[string]int{}}
	base := tl.deliveries()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		r := readyz(p)
		if r.Code != http.StatusOK {
			o.notReady++
		}
		detail := r.Checks["redis"]
		if strings.HasPrefix(detail, "unreachable") {
			o.unreachable++
			detail = "unreachable, ..."
		}
		o.details[detail]++
	}
	o.delivered = tl.deliveries() - base
	return o
}

// Redis is paused (CLIENT PAUSE 5000 ALL), then the server itself is stopped
// for 5 s and started again with its data. The worker keeps delivering from
// its cached table throughout, /readyz says Redis is unreachable while it is
// down and reachable after, and nothing is lost.
func TestRedisPausedAndStoppedServesCachedTable(t *testing.T) {
	w := newWorld(t, 2)
	rdb := w.env.Redis(t) // a client of its own: the worker's is the one paused
	ctx := context.Background()
	began := time.Now()
	p := w.start()
	p.WaitReady(t, 60*time.Second)
	prod := w.produce(5_000, 25*time.Second, 500) // 200 events/s
	time.Sleep(3 * time.Second)

	// CLIENT PAUSE ALL: every other client's commands hang for 5 s.
	if err := rdb.Do(ctx, "CLIENT", "PAUSE", "5000", "ALL").Err(); err != nil {
		t.Fatalf("CLIENT PAUSE: %v", err)
	}
	paused := watchOutage(p, w.tally, 5*time.Second)
	t.Logf("Redis paused 5s: %d webhooks delivered meanwhile, /readyz not 200 in %d samples, redis check %v",
		paused.delivered, paused.notReady, paused.details)
	if paused.delivered == 0 || paused.notReady > 0 {
		t.Fatalf("while Redis was paused: %d webhooks delivered, /readyz not 200 in %d samples: want deliveries from the cached table and ready",
			paused.delivered, paused.notReady)
	}
	took := waitFor(t, 15*time.Second, "the redis check to say reachable after the pause", func() bool {
		return readyz(p).Checks["redis"] == "reachable"
	})
	t.Logf("Redis paused 5s: reachable again %s after the pause ended", took.Round(100*time.Millisecond))

	// Stop the server. This Redis keeps no data on disk (services-up.sh
	// runs it with --save ""), so snapshot it first: a production Redis
	// that restarts keeps its data. (TestRedisRestartedEmpty is the other
	// case.) The snapshot is removed once the server has loaded it.
	if dump := snapshot(t, rdb); dump != "" {
		t.Cleanup(func() { _ = os.Remove(dump) })
	}
	addr := w.env.RedisAddr
	downTook := stopService(t, "redis", addr)
	stoppedAt := time.Now()
	waitFor(t, 10*time.Second, "/readyz to say Redis is unreachable", func() bool {
		return strings.HasPrefix(readyz(p).Checks["redis"], "unreachable, serving the cached table")
	})
	stopped := watchOutage(p, w.tally, 5*time.Second-time.Since(stoppedAt))
	downFor := time.Since(stoppedAt)
	upTook := service(t, "up", "redis")
	back := waitFor(t, 20*time.Second, "the redis check to say reachable after the restart", func() bool {
		return readyz(p).Checks["redis"] == "reachable"
	})
	r := readyz(p)
	t.Logf("Redis stopped %.1fs (services-down %.1fs, services-up %.1fs): %d webhooks delivered meanwhile, /readyz not 200 in %d samples, "+
		"redis check %v; reachable %.1fs after the restart; table: %s",
		downFor.Seconds(), downTook.Seconds(), upTook.Seconds(), stopped.delivered, stopped.notReady, stopped.details,
		back.Seconds(), r.Checks["subscriptions"])
	if stopped.delivered == 0 || stopped.notReady > 0 || stopped.unreachable == 0 {
		t.Fatalf("while Redis was stopped: %d webhooks delivered, /readyz not 200 in %d samples, unreachable in %d: "+
			"want deliveries from the cached table, ready, and Redis reported unreachable", stopped.delivered, stopped.notReady, stopped.unreachable)
	}
	if !strings.HasPrefix(r.Checks["subscriptions"], fmt.Sprintf("%d subscriptions", len(w.subs))) {
		t.Errorf("after the restart the table is %q, want %d subscriptions", r.Checks["subscriptions"], len(w.subs))
	}

	ids := prod.wait(t, time.Minute)
	f, drained := w.tally.drain(t, ids, time.Minute)
	w.stop(p)
	warnings, recoveries := len(logLines(p, redisDownWarning)), len(logLines(p, redisBackInfo))
	t.Logf("Redis pause + stop: %s; every pair delivered %.1fs after the last was produced; %d outage warnings, %d recovery lines; whole test %.1fs",
		f, drained.Seconds(), warnings, recoveries, time.Since(began).Seconds())
	if f.Lost != 0 || f.DupPairs != 0 || f.Unexpected != 0 {
		t.Errorf("lost %d, duplicated %d, unexpected %d: a Redis outage must neither lose nor repeat a webhook", f.Lost, f.DupPairs, f.Unexpected)
	}
	// One warning per outage, not one per failed poll, and one line when it ends.
	if warnings < 1 || warnings > 2 || recoveries != warnings {
		t.Errorf("%d %q lines and %d %q lines: want one of each per outage (the stop, and perhaps the pause)",
			warnings, redisDownWarning, recoveries, redisBackInfo)
	}
}

// snapshot makes Redis write its data where it reads it at startup (SAVE),
// and returns the file's path if this call created it ("" if it existed).
func snapshot(t *testing.T, rdb *redis.Client) string {
	t.Helper()
	ctx := context.Background()
	dir, err1 := rdb.ConfigGet(ctx, "dir").Result()
	file, err2 := rdb.ConfigGet(ctx, "dbfilename").Result()
	if err := errors.Join(err1, err2); err != nil {
		t.Fatalf("CONFIG GET: %v", err)
	}
	path := filepath.Join(dir["dir"], file["dbfilename"])
	_, err := os.Stat(path)
	created := errors.Is(err, fs.ErrNotExist)
	if err := rdb.Save(ctx).Err(); err != nil {
		t.Fatalf("SAVE: %v", err)
	}
	if created {
		return path
	}
	return ""
}

// Redis is stopped and comes back EMPTY (no persistence, as services-up.sh
// runs it, or a lost volume), and the operator restores the table from a
// backup, as the README says (`subscriptions list -o yaml --reveal-secrets`,
// then `subscriptions apply`). The events that arrive in between must not
// be committed undelivered: a partner must see no gap.
func TestRedisRestartedEmpty(t *testing.T) {
	w := newWorld(t, 2)
	began := time.Now()
	p := w.start()
	p.WaitReady(t, 60*time.Second)
	prod := w.produce(4_000, 20*time.Second, 500) // 200 events/s
	time.Sleep(3 * time.Second)
	// What `webhookd subscriptions list -o yaml --reveal-secrets` saves.
	backup, err := w.store.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	version, err := w.store.Version(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	stopService(t, "redis", w.env.RedisAddr)
	time.Sleep(3 * time.Second)
	service(t, "up", "redis")
	restartedAt := time.Now()
	base := w.tally.deliveries()
	time.Sleep(3 * time.Second) // three polls of the version key
	empty := readyz(p)
	emptyDelivered := w.tally.deliveries() - base
	reloads := logLines(p, "subscription table reloaded")
	if _, err := w.store.Apply(context.Background(), backup); err != nil {
		t.Fatalf("restore the backup: %v", err)
	}
	t.Logf("Redis back empty: for %.1fs until the backup was applied, /readyz %d (subscriptions: %q, redis: %q), %d webhooks delivered, %d table reloads logged %v",
		time.Since(restartedAt).Seconds(), empty.Code, empty.Checks["subscriptions"], empty.Checks["redis"], emptyDelivered, len(reloads), reloads)

	ids := prod.wait(t, time.Minute)
	// Give the worker its chance to deliver late (had it paused rather than
	// dropped, the events would arrive now).
	start := time.Now()
	for w.tally.figures(ids).Lost != 0 && time.Since(start) < 15*time.Second {
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second)
	f := w.tally.figures(ids)
	w.stop(p)
	t.Logf("Redis restarted empty, table restored from backup: %s; whole test %.1fs", f, time.Since(began).Seconds())
	if f.Lost != 0 {
		t.Errorf("LOST %d pairs (first: %v): the events that arrived while Redis was empty were committed undelivered "+
			"(the worker served the empty table, version %d → 0, as a valid one: /readyz %d, %q); partners see a gap",
			f.Lost, f.Missing, version, empty.Code, empty.Checks["subscriptions"])
	}
	if f.Unexpected != 0 {
		t.Errorf("%d webhooks for events nobody produced", f.Unexpected)
	}
}
