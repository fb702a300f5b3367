package integration

import (
	"context"
	"encoding/json"
	"fmt"
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
	name string
	have func(testing.TB) testenv.RedisHA
	use  func(testenv.RedisHA) func(*config.Config)
}{
	{"sentinel", testenv.RedisSentinel, func(h testenv.RedisHA) func(*config.Config) { return h.Sentinel }},
	{"cluster", testenv.RedisCluster, func(h testenv.RedisHA) func(*config.Config) { return h.Cluster }},
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
			if got := s.cfg.Redis.Mode(); got != mode.name {
				t.Fatalf("config mode %q, want %q", got, mode.name)
			}
			first := testenv.NewReceiver(t)
			s.subscribe(subscriptions.Subscription{TenantID: "acme", URL: first.URL})
			w := s.start()

			s.publish("p1", payout("acme", "c1", mode.name+"-1", "p1"))
			waitHandled(t, w, 1)
			if first.Count() != 1 {
				t.Fatalf("%d deliveries, want 1", first.Count())
			}

			later := testenv.NewReceiver(t)
			s.subscribe(subscriptions.Subscription{TenantID: "acme", URL: later.URL})
			testenv.Eventually(t, 2*time.Second, "the new subscription in the worker's table (pub/sub)", func() bool {
				return strings.HasPrefix(check(w, "subscriptions").Detail, "2 subscriptions")
			})
			s.publish("p2", payout("acme", "c1", mode.name+"-2", "p2"))
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
