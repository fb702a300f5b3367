package integration

import (
	"strings"
	"testing"
	"time"

	"github.com/unibo/webhookd/internal/testenv"
	"github.com/unibo/webhookd/ops"
	"github.com/unibo/webhookd/subscriptions"
)

func check(w *testenv.Worker, name string) ops.Check {
	for _, c := range w.Readiness() {
		if c.Name == name {
			return c
		}
	}
	return ops.Check{}
}

// With Redis unreachable, a running worker keeps delivering from its last
// good table and says so in its logs and readiness; it recovers by itself.
func TestRedisOutageServesCachedTable(t *testing.T) {
	s := newSuite(t)
	proxy := testenv.NewProxy(t, s.env.RedisAddr)
	s.cfg.Redis.Addr = proxy.Addr()
	rc := testenv.NewReceiver(t)
	s.subscribe(subscriptions.Subscription{TenantID: "acme", URL: rc.URL})
	w := s.start()

	s.publish("p1", payout("acme", "c1", "before-outage", "p1"))
	waitHandled(t, w, 1)

	proxy.Cut()
	testenv.Eventually(t, 10*time.Second, "readiness to report Redis unreachable", func() bool {
		return strings.Contains(check(w, "redis").Detail, "unreachable, serving the cached table")
	})
	if !w.Ready() {
		t.Fatalf("worker not ready while serving a cached table: %+v", w.Readiness())
	}
	s.publish("p2", payout("acme", "c1", "during-outage", "p2"))
	waitHandled(t, w, 2)
	if rc.Count() != 2 {
		t.Fatalf("%d deliveries, want 2 (one during the outage)", rc.Count())
	}
	warnings := 0
	for _, e := range w.Logs.All() {
		if e.LoggerName == "subscriptions" && e.Level >= 1 && strings.Contains(strings.ToLower(e.Message), "redis") {
			warnings++
		}
	}
	if warnings == 0 {
		t.Fatal("no warning logged about the unreachable Redis")
	}

	proxy.Restore()
	testenv.Eventually(t, 15*time.Second, "readiness to report Redis reachable again", func() bool {
		return check(w, "redis").Detail == "reachable"
	})
}

// At startup the worker is not ready, and consumes nothing, until the table
// is loaded.
func TestNotReadyUntilTableLoaded(t *testing.T) {
	s := newSuite(t)
	proxy := testenv.NewProxy(t, s.env.RedisAddr)
	proxy.Cut()
	s.cfg.Redis.Addr = proxy.Addr()
	rc := testenv.NewReceiver(t)
	s.subscribe(subscriptions.Subscription{TenantID: "acme", URL: rc.URL})
	testenv.CreateTopics(t, s.cfg)
	s.publish("p1", payout("acme", "c1", "waiting", "p1"))

	w := s.startNoWait()
	time.Sleep(2 * time.Second)
	if w.Ready() || check(w, "subscriptions").OK || check(w, "kafka").OK {
		t.Fatalf("ready without a table: %+v", w.Readiness())
	}
	if w.Consumer().Stats().Handled.Load() != 0 {
		t.Fatal("consumed before the table was loaded")
	}
	proxy.Restore()
	testenv.Eventually(t, 60*time.Second, "ready once Redis answers", w.Ready)
	waitHandled(t, w, 1)
	if rc.Count() != 1 {
		t.Fatalf("%d deliveries after the table loaded, want 1", rc.Count())
	}
}
