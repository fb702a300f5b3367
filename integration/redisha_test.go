package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap/zaptest"

	"github.com/unibo/webhookd/config"
	"github.com/unibo/webhookd/event"
	"github.com/unibo/webhookd/internal/testenv"
	"github.com/unibo/webhookd/subscriptions"
)

// These tests run the worker and the store over Redis Sentinel and Redis
// Cluster, as scripts/services-up.sh starts them (redis-ha, see
// testenv.RedisHA); they skip, saying which variables to set, when those are
// not configured.

// redisModes are the deployments besides one server, each with the helper
// that skips when it is not configured and the one that points a config at it.
var redisModes = []struct {
	name, mode string
	have       func(testing.TB) testenv.RedisHA
	use        func(testenv.RedisHA) func(*config.Config)
}{
	{"sentinel", config.RedisSentinel, testenv.RedisSentinel, func(h testenv.RedisHA) func(*config.Config) { return h.Sentinel }},
	{"cluster", config.RedisCluster, testenv.RedisCluster, func(h testenv.RedisHA) func(*config.Config) { return h.Cluster }},
	{"cluster endpoint", config.RedisCluster, testenv.RedisCluster, func(h testenv.RedisHA) func(*config.Config) { return h.ClusterEndpoint }},
}

// A worker configured with the Sentinels (or the cluster's nodes) loads the
// table, delivers, and takes a subscription added while it runs within 2 s
// through the change notification alone: polling and refresh are off.
func TestWorkerOverRedisSentinelAndCluster(t *testing.T) {
	for _, mode := range redisModes {
		t.Run(mode.name, func(t *testing.T) {
			ha := mode.have(t)
			s := newSuite(t)
			s.cfg.Subscriptions.PollInterval = time.Hour
			s.cfg.Subscriptions.RefreshInterval = time.Hour
			s.useRedis(mode.use(ha))
			if got := s.cfg.Redis.Mode(); got != mode.mode {
				t.Fatalf("config mode %q, want %q", got, mode.mode)
			}
			first := testenv.NewReceiver(t)
			s.subscribe(subscriptions.Subscription{TenantID: "acme", URL: first.URL})
			w := s.start()

			s.publish("p1", payout("acme", "c1", "ha-1", "p1"))
			waitHandled(t, w, 1)
			if first.Count() != 1 {
				t.Fatalf("%d deliveries, want 1", first.Count())
			}

			later := testenv.NewReceiver(t)
			s.subscribe(subscriptions.Subscription{TenantID: "acme", URL: later.URL})
			testenv.Eventually(t, 2*time.Second, "the new subscription in the worker's table (pub/sub)", func() bool {
				return strings.HasPrefix(check(w, "subscriptions").Detail, "2 subscriptions")
			})
			s.publish("p2", payout("acme", "c1", "ha-2", "p2"))
			waitHandled(t, w, 2)
			if first.Count() != 2 || later.Count() != 1 {
				t.Fatalf("deliveries %d and %d, want 2 and 1", first.Count(), later.Count())
			}
			if c := check(w, "redis"); c.Detail != "reachable" {
				t.Fatalf("redis check %+v, want reachable", c)
			}
		})
	}
}

// The optimistic transactions over Sentinel and Cluster: concurrent writers
// (WATCH conflicts, retried), an update and a delete all land, and one
// consistent load sees them at the version their count says.
func TestStoreTransactionsOverRedisSentinelAndCluster(t *testing.T) {
	for _, mode := range redisModes {
		t.Run(mode.name, func(t *testing.T) {
			ha := mode.have(t)
			s := newSuite(t)
			s.useRedis(mode.use(ha))
			ctx := context.Background()
			const writers = 8
			ids := make([]string, writers)
			errs := make([]error, writers)
			var wg sync.WaitGroup
			for i := range writers {
				wg.Go(func() {
					sub, err := s.store.Add(ctx, subscriptions.Subscription{TenantID: "acme", Enabled: true,
						URL: fmt.Sprintf("https://hooks.acme.example/%d", i), EventTypes: event.Types[:], APIKey: "key-" + testenv.ID()})
					ids[i], errs[i] = sub.ID, err
				})
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("writer %d: %v", i, err)
				}
			}
			if _, err := s.store.Update(ctx, ids[0], func(sub *subscriptions.Subscription) error {
				sub.URL = "https://hooks.acme.example/updated"
				return nil
			}); err != nil {
				t.Fatalf("update: %v", err)
			}
			if err := s.store.Delete(ctx, ids[1]); err != nil {
				t.Fatalf("delete: %v", err)
			}
			snap, err := s.store.Load(ctx)
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			if len(snap.Subscriptions) != writers-1 || snap.Version != writers+2 || snap.Epoch == "" {
				t.Fatalf("table: %d subscriptions at version %d, epoch %q; want %d at version %d with an epoch",
					len(snap.Subscriptions), snap.Version, snap.Epoch, writers-1, writers+2)
			}
			got, err := s.store.Get(ctx, ids[0])
			if err != nil || got.URL != "https://hooks.acme.example/updated" || !strings.HasPrefix(got.APIKey, "key-") {
				t.Fatalf("updated subscription: %+v, %v", got, err)
			}
		})
	}
}

// A change whose notification is lost (written without PUBLISH, as when the
// subscriber was reconnecting) reaches the table by its version poll, over
// Sentinel and Cluster too.
func TestTablePollsVersionOverRedisSentinelAndCluster(t *testing.T) {
	for _, mode := range redisModes {
		t.Run(mode.name, func(t *testing.T) {
			ha := mode.have(t)
			cfg := testenv.Start(t).Config(t)
			mode.use(ha)(&cfg)
			if err := cfg.Validate(); err != nil {
				t.Fatalf("config: %v", err)
			}
			rdb, err := subscriptions.NewRedisClient(cfg.Redis)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = rdb.Close() })
			store := subscriptions.NewStore(rdb, cfg.Redis.KeyPrefix)
			ctx := context.Background()
			if _, err := store.Add(ctx, subscriptions.Subscription{TenantID: "acme", URL: "https://hooks.acme.example/a",
				EventTypes: event.Types[:], Enabled: true}); err != nil {
				t.Fatalf("add: %v", err)
			}

			table := subscriptions.NewTable(store, config.Subscriptions{PollInterval: 100 * time.Millisecond, RefreshInterval: time.Hour},
				zaptest.NewLogger(t))
			runCtx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- table.Run(runCtx) }()
			t.Cleanup(func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("table: %v", err)
				}
			})
			testenv.Eventually(t, 10*time.Second, "the table loaded", table.Ready)

			silent := subscriptions.Subscription{ID: "silent-" + testenv.ID(), TenantID: "acme", URL: "https://hooks.acme.example/b",
				EventTypes: event.Types[:], Enabled: true, CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC()}
			raw, err := json.Marshal(silent)
			if err != nil {
				t.Fatal(err)
			}
			prefix := cfg.Redis.KeyPrefix
			if _, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.HSet(ctx, prefix+"subscriptions", silent.ID, raw)
				p.Incr(ctx, prefix+"subscriptions:version")
				return nil
			}); err != nil {
				t.Fatalf("silent write: %v", err)
			}
			testenv.Eventually(t, 2*time.Second, "the silently written subscription in the table (version poll)", func() bool {
				_, ok := table.Get(silent.ID)
				return ok
			})
		})
	}
}

// A Sentinel failover under a running worker: SENTINEL FAILOVER promotes the
// replica while events flow. No event is lost (the worker serves its cached
// table while the master changes), a subscription written through the
// Sentinels afterwards lands on the new master and reaches the worker within
// 2 s, and the worker's own write (disabling a subscription whose endpoint
// answers 410 Gone) lands too. Bounded to about 30 s; it skips, saying why,
// when the Sentinel will not start a failover.
func TestWorkerSurvivesSentinelFailover(t *testing.T) {
	ha := testenv.RedisSentinel(t)
	if testing.Short() {
		t.Skip("a Sentinel failover takes about 15 s")
	}
	s := newSuite(t)
	s.useRedis(ha.Sentinel)
	ctx := context.Background()
	first, gone := testenv.NewReceiver(t), testenv.NewReceiver(t)
	s.subscribe(subscriptions.Subscription{TenantID: "acme", URL: first.URL})
	goneSub := s.subscribe(subscriptions.Subscription{TenantID: "acme", URL: gone.URL})
	w := s.start()

	sent := 0
	publish := func(phase string, n int) {
		t.Helper()
		for range n {
			sent++
			s.publish(fmt.Sprintf("p%d", sent%3), payout("acme", "c1", fmt.Sprintf("%s-%d", phase, sent), "p1"))
		}
	}
	publish("before", 5)
	waitHandled(t, w, int64(sent))

	old := ha.SentinelMasterAddr(t)
	replicated(t, old)
	sentinel := ha.SentinelClient(t)
	start := time.Now()
	var err error
	for {
		// INPROG: the previous run's failover is still being completed;
		// NOGOODSLAVE: the Sentinel has not seen the replica linked yet.
		err = sentinel.Failover(ctx, ha.SentinelMaster).Err()
		if err == nil || time.Since(start) > 15*time.Second ||
			!(strings.Contains(err.Error(), "INPROG") || strings.Contains(err.Error(), "NOGOODSLAVE")) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err != nil {
		t.Skipf("the Sentinel would not start a failover (%v); the failover is not tested", err)
	}
	publish("during", 5)
	var promoted string
	testenv.Eventually(t, 10*time.Second, "the Sentinel naming a new master", func() bool {
		promoted = ha.SentinelMasterAddr(t)
		return promoted != old
	})
	// Until the Sentinel turns the old master into a replica (about 10 s
	// later), both answer as masters; a write to the old one in that window
	// would be lost (see README, Production connectivity). Wait for the end.
	testenv.Eventually(t, 20*time.Second, "the old master "+old+" demoted to a replica of "+promoted, func() bool {
		return role(t, old) == "slave"
	})
	t.Logf("failover from %s to %s took %s", old, promoted, time.Since(start).Round(100*time.Millisecond))
	publish("after", 5)
	waitHandled(t, w, int64(sent))
	got := map[string]bool{}
	for _, r := range first.Requests() {
		var p struct {
			RequestID string `json:"request_id"`
		}
		_ = json.Unmarshal(r.Body, &p)
		got[p.RequestID] = true
	}
	if len(got) != sent {
		t.Fatalf("%d distinct events delivered across the failover, want %d: %v", len(got), sent, got)
	}

	later := testenv.NewReceiver(t)
	s.subscribe(subscriptions.Subscription{TenantID: "acme", URL: later.URL})
	testenv.Eventually(t, 2*time.Second, "the subscription written after the failover in the worker's table", func() bool {
		return strings.HasPrefix(check(w, "subscriptions").Detail, "3 subscriptions")
	})
	gone.SetRespond(func(testenv.Request) int { return http.StatusGone })
	publish("last", 1)
	waitHandled(t, w, int64(sent))
	if later.Count() != 1 {
		t.Fatalf("%d deliveries to the subscription written after the failover, want 1", later.Count())
	}
	testenv.Eventually(t, 5*time.Second, "the worker's write (disable after 410) on the new master", func() bool {
		sub, err := s.store.Get(ctx, goneSub.ID)
		return err == nil && !sub.Enabled
	})
	if c := check(w, "redis"); c.Detail != "reachable" {
		t.Fatalf("redis check %+v after the failover, want reachable", c)
	}
}

// replicated waits until the master at addr has every write so far on its
// replica: a failover promotes the replica as it is.
func replicated(t *testing.T, addr string) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer func() { _ = c.Close() }()
	ctx := context.Background()
	// WAIT counts the replicas that acknowledged this connection's writes,
	// so the marker and WAIT go over one connection.
	conn := c.Conn()
	defer func() { _ = conn.Close() }()
	if err := conn.Set(ctx, "webhookd-test-failover-marker", testenv.ID(), time.Minute).Err(); err != nil {
		t.Fatalf("write to the master %s: %v", addr, err)
	}
	if n, err := conn.Wait(ctx, 1, 10*time.Second).Result(); err != nil || n < 1 {
		t.Fatalf("the replica did not acknowledge the master's writes within 10s: %d replicas, %v", n, err)
	}
}

// role is what the server at addr says it is: master or slave.
func role(t *testing.T, addr string) string {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer func() { _ = c.Close() }()
	r, err := c.Do(context.Background(), "ROLE").Slice()
	if err != nil || len(r) == 0 {
		return ""
	}
	s, _ := r[0].(string)
	return s
}

// redis.addr naming one node of a Redis Cluster without redis.cluster is a
// likely mistake (a cluster's configuration endpoint looks like any
// address): the node redirects every key it does not serve. The error says
// what to set instead of only relaying the redirection.
func TestOneClusterNodeWithoutClusterModeIsExplained(t *testing.T) {
	ha := testenv.RedisCluster(t)
	ctx := context.Background()
	node := redis.NewClient(&redis.Options{Addr: ha.ClusterAddrs[0]})
	defer func() { _ = node.Close() }()
	cfg := testenv.Start(t).Config(t)
	// A prefix whose slot another node serves.
	for range 100 {
		ha.Cluster(&cfg)
		slot, err := node.ClusterKeySlot(ctx, cfg.Redis.KeyPrefix+"subscriptions").Result()
		if err != nil {
			t.Fatalf("CLUSTER KEYSLOT: %v", err)
		}
		if !servedBy(t, node, ha.ClusterAddrs[0], slot) {
			break
		}
	}
	cfg.Redis.Addrs, cfg.Redis.Addr = nil, ha.ClusterAddrs[0]
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	rdb, err := subscriptions.NewRedisClient(cfg.Redis)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rdb.Close() }()
	store := subscriptions.NewStore(rdb, cfg.Redis.KeyPrefix)
	_, loadErr := store.Load(ctx)
	_, addErr := store.Add(ctx, subscriptions.Subscription{TenantID: "acme", URL: "https://hooks.acme.example/a",
		EventTypes: event.Types[:], Enabled: true})
	for what, err := range map[string]error{"load": loadErr, "add": addErr} {
		t.Logf("%s: %v", what, err)
		if err == nil || !strings.Contains(err.Error(), "redis.cluster") {
			t.Errorf("%s over one cluster node in single-server mode: %v; want an error naming redis.cluster", what, err)
		}
	}
}

// servedBy reports whether the cluster node at addr serves slot.
func servedBy(t *testing.T, c *redis.Client, addr string, slot int64) bool {
	t.Helper()
	ranges, err := c.ClusterSlots(context.Background()).Result()
	if err != nil {
		t.Fatalf("CLUSTER SLOTS: %v", err)
	}
	for _, r := range ranges {
		if int64(r.Start) <= slot && slot <= int64(r.End) && len(r.Nodes) > 0 {
			return r.Nodes[0].Addr == addr
		}
	}
	t.Fatalf("slot %d is served by no node", slot)
	return false
}
