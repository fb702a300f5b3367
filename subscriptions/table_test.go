package subscriptions

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/unibo/webhookd/config"
	"github.com/unibo/webhookd/event"
)

// fakeSource is a hand-written Source.
type fakeSource struct {
	mu       sync.Mutex
	snap     Snapshot
	err      error
	watching atomic.Int32 // WatchChanges calls still running
}

func (f *fakeSource) Load(context.Context) (Snapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.snap, f.err
}

func (f *fakeSource) Version(context.Context) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.snap.Version, f.err
}

func (f *fakeSource) WatchChanges(ctx context.Context, _ func()) error {
	f.watching.Add(1)
	defer f.watching.Add(-1)
	<-ctx.Done()
	return nil
}

// fastCfg polls often so tests that do not measure freshness run quickly.
var fastCfg = config.Subscriptions{PollInterval: 20 * time.Millisecond, RefreshInterval: time.Hour}

// startTable runs a table until the test ends and checks that Run returns nil
// promptly once cancelled.
func startTable(t *testing.T, src Source, cfg config.Subscriptions) (*Table, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	tbl := NewTable(src, cfg, zap.New(core))
	tbl.minBackoff, tbl.maxBackoff = 10*time.Millisecond, 100*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tbl.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run = %v, want nil after cancel", err)
			}
		case <-time.After(3 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return tbl, logs
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestTableMatch(t *testing.T) {
	sub := func(id, tenant string, enabled bool, campaigns []string, types ...event.Type) Subscription {
		return Subscription{ID: id, TenantID: tenant, URL: "https://" + id + ".example/", EventTypes: types, CampaignIDs: campaigns, Enabled: enabled}
	}
	subs := []Subscription{
		sub("a-all", "acme", true, nil, event.PrizePayoutSucceeded, event.PrizePayoutFailed),
		sub("a-summer", "acme", true, []string{"summer", "spring"}, event.PrizePayoutSucceeded),
		sub("a-off", "acme", false, nil, event.PrizePayoutSucceeded),
		sub("a-optin", "acme", true, nil, event.PlayerOptedIn),
		sub("g-all", "globex", true, nil, event.PrizePayoutSucceeded),
		sub("a-dup", "acme", true, nil, event.PrizePayoutFailed, event.PrizePayoutFailed), // hand-written in Redis
	}
	tbl, _ := startTable(t, &fakeSource{snap: Snapshot{Subscriptions: subs, Version: 7}}, fastCfg)
	waitFor(t, time.Second, "ready", tbl.Ready)

	tests := []struct {
		name string
		ev   event.Event
		want string
	}{
		{"type and campaign", event.Event{TenantID: "acme", Type: event.PrizePayoutSucceeded, CampaignID: "summer"}, "a-all a-summer"},
		{"campaign filter excludes", event.Event{TenantID: "acme", Type: event.PrizePayoutSucceeded, CampaignID: "winter"}, "a-all"},
		{"type filter", event.Event{TenantID: "acme", Type: event.PrizePayoutFailed, CampaignID: "summer"}, "a-all a-dup"},
		{"other type", event.Event{TenantID: "acme", Type: event.PlayerOptedIn}, "a-optin"},
		{"nobody subscribed", event.Event{TenantID: "acme", Type: event.PlayerOptedOut}, ""},
		{"tenant isolation", event.Event{TenantID: "globex", Type: event.PrizePayoutSucceeded, CampaignID: "summer"}, "g-all"},
		{"unknown tenant", event.Event{TenantID: "initech", Type: event.PrizePayoutSucceeded}, ""},
		{"empty tenant", event.Event{Type: event.PrizePayoutSucceeded}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tbl.Match(tt.ev)
			if pids(got) != tt.want {
				t.Errorf("Match = %q, want %q", pids(got), tt.want)
			}
			// The index must agree with Subscription.Matches.
			var slow []Subscription
			for _, s := range subs {
				if s.Matches(tt.ev) {
					slow = append(slow, s)
				}
			}
			if ids(slow) != tt.want {
				t.Errorf("Matches = %q, want %q", ids(slow), tt.want)
			}
		})
	}
	if st := tbl.Status(); !st.Loaded || st.Size != len(subs) || st.Version != 7 || !st.RedisOK || st.LoadedAt.IsZero() {
		t.Errorf("Status = %+v", st)
	}
}

func TestTableRunStopsItsGoroutines(t *testing.T) {
	src := &fakeSource{}
	tbl := NewTable(src, fastCfg, zap.NewNop())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tbl.Run(ctx) }()
	waitFor(t, time.Second, "watching", func() bool { return src.watching.Load() == 1 && tbl.Ready() })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if n := src.watching.Load(); n != 0 {
		t.Errorf("Run returned with %d change watchers still running", n)
	}
}

func TestTableNotReadyBeforeFirstLoad(t *testing.T) {
	src := &fakeSource{err: errors.New("dial tcp: connection refused")}
	tbl, logs := startTable(t, src, fastCfg)
	if tbl.Ready() {
		t.Fatal("Ready before any load")
	}
	if got := tbl.Match(event.Event{TenantID: "acme", Type: event.PlayerOptedIn}); len(got) != 0 {
		t.Errorf("Match before load = %v", got)
	}
	time.Sleep(150 * time.Millisecond) // several retries
	st := tbl.Status()
	if tbl.Ready() || st.Loaded || st.RedisOK || !strings.Contains(st.LastError, "connection refused") {
		t.Errorf("Status = %+v, want not loaded, Redis not OK, the error", st)
	}
	if n := logs.FilterLevelExact(zapcore.WarnLevel).Len(); n != 1 {
		t.Errorf("%d warnings while retrying, want 1", n)
	}

	src.mu.Lock()
	src.err = nil
	src.snap = Snapshot{Version: 1, Subscriptions: []Subscription{newSub("acme", "https://a.example/", event.PlayerOptedIn)}}
	src.mu.Unlock()
	waitFor(t, time.Second, "ready once Redis answers", tbl.Ready)
	if got := tbl.Match(event.Event{TenantID: "acme", Type: event.PlayerOptedIn}); len(got) != 1 {
		t.Errorf("Match after load = %d subscriptions, want 1", len(got))
	}
}

// redisTable runs a table on a store over mr.
func redisTable(t *testing.T, cfg config.Subscriptions) (*Table, *Store, *miniredis.Miniredis, *observer.ObservedLogs) {
	t.Helper()
	s, mr := newMiniStore(t)
	tbl, logs := startTable(t, s, cfg)
	waitFor(t, 2*time.Second, "first load", tbl.Ready)
	return tbl, s, mr, logs
}

var optIn = event.Event{TenantID: "acme", Type: event.PlayerOptedIn}

func TestTableSeesChangesThroughPubSub(t *testing.T) {
	// No polling, no refresh: only the change message can bring the update.
	// Runs on the real Redis too when WEBHOOKD_TEST_REDIS_ADDR is set.
	s, rdb := newTestStore(t)
	tbl, _ := startTable(t, s, config.Subscriptions{PollInterval: time.Hour, RefreshInterval: time.Hour})
	waitFor(t, 2*time.Second, "first load", tbl.Ready)
	waitFor(t, time.Second, "watcher subscribed", func() bool {
		return rdb.PubSubNumSub(context.Background(), s.channel).Val()[s.channel] == 1
	})
	sub := mustAdd(t, s, newSub("acme", "https://a.example/", event.PlayerOptedIn))
	waitFor(t, 2*time.Second, "added subscription matched", func() bool { return len(tbl.Match(optIn)) == 1 })
	if _, err := s.Update(context.Background(), sub.ID, func(s *Subscription) error { s.Enabled = false; return nil }); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "disabled subscription unmatched", func() bool { return len(tbl.Match(optIn)) == 0 })
}

func TestTableSeesChangesThroughPollingAlone(t *testing.T) {
	// The default poll interval, no refresh, and writes that publish nothing.
	tbl, s, mr, _ := redisTable(t, config.Subscriptions{PollInterval: time.Second, RefreshInterval: time.Hour})
	mr.HSet(s.hashKey, "sub_direct", `{"id":"sub_direct","tenant_id":"acme","url":"https://a.example/","event_types":["PLAYER_OPTED_IN"],"enabled":true}`)
	if _, err := mr.Incr(s.versionKey, 1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "directly written subscription matched", func() bool { return len(tbl.Match(optIn)) == 1 })
	if v := tbl.Status().Version; v != 1 {
		t.Errorf("Status.Version = %d, want 1", v)
	}
}

func TestTableRefreshesWithoutVersionChange(t *testing.T) {
	// Someone rewrote the hash without bumping the version: only the
	// unconditional refresh repairs that.
	tbl, s, mr, _ := redisTable(t, config.Subscriptions{PollInterval: 20 * time.Millisecond, RefreshInterval: 200 * time.Millisecond})
	mr.HSet(s.hashKey, "sub_direct", `{"id":"sub_direct","tenant_id":"acme","url":"https://a.example/","event_types":["PLAYER_OPTED_IN"],"enabled":true}`)
	waitFor(t, 2*time.Second, "refresh picked up the entry", func() bool { return len(tbl.Match(optIn)) == 1 })
}

func TestTableSurvivesRedisOutage(t *testing.T) {
	tbl, s, mr, logs := redisTable(t, fastCfg)
	mustAdd(t, s, newSub("acme", "https://a.example/", event.PlayerOptedIn))
	waitFor(t, 2*time.Second, "subscription matched", func() bool { return len(tbl.Match(optIn)) == 1 })

	mr.Close()
	waitFor(t, 3*time.Second, "RedisOK=false", func() bool { return !tbl.Status().RedisOK })
	time.Sleep(200 * time.Millisecond) // many failed polls
	st := tbl.Status()
	if !st.Loaded || st.Size != 1 || st.LastError == "" {
		t.Errorf("Status during outage = %+v, want the last table and the error", st)
	}
	if got := tbl.Match(optIn); len(got) != 1 {
		t.Errorf("Match during outage = %d subscriptions, want the last good table's 1", len(got))
	}
	if n := logs.FilterMessageSnippet("cannot refresh the subscription table from Redis").FilterLevelExact(zapcore.WarnLevel).Len(); n != 1 {
		t.Errorf("%d outage warnings, want exactly 1", n)
	}
	if w := logs.FilterMessageSnippet("cannot refresh the subscription table from Redis").All(); len(w) == 1 && w[0].ContextMap()["error"] == nil {
		t.Errorf("outage warning has no error field: %v", w[0].ContextMap())
	}

	if err := mr.Restart(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "RedisOK=true", func() bool { return tbl.Status().RedisOK })
	if n := logs.FilterMessageSnippet("reachable again").FilterLevelExact(zapcore.InfoLevel).Len(); n != 1 {
		t.Errorf("%d recovery messages, want exactly 1", n)
	}
	if st := tbl.Status(); st.LastError != "" {
		t.Errorf("LastError after recovery = %q", st.LastError)
	}
	mustAdd(t, s, newSub("acme", "https://b.example/", event.PlayerOptedIn))
	waitFor(t, 2*time.Second, "change after recovery", func() bool { return len(tbl.Match(optIn)) == 2 })
}

func TestTableLogsUnreadableEntriesOnceAndNeverTheKey(t *testing.T) {
	tbl, s, mr, logs := redisTable(t, config.Subscriptions{PollInterval: 20 * time.Millisecond, RefreshInterval: 30 * time.Millisecond})
	sub := newSub("acme", "https://a.example/", event.PlayerOptedIn)
	sub.APIKey = testKey
	mustAdd(t, s, sub)
	mr.HSet(s.hashKey, "sub_broken", `{"id":"sub_broken","api_key":"`+testKey+`",`)
	if _, err := mr.Incr(s.versionKey, 1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "broken entry skipped", func() bool { return tbl.Status().Skipped == 1 })
	time.Sleep(150 * time.Millisecond) // several refreshes
	if got := tbl.Match(optIn); len(got) != 1 {
		t.Errorf("the readable subscription is not served: %d matches", len(got))
	}
	warns := logs.FilterMessageSnippet("unreadable")
	if warns.Len() != 1 || warns.All()[0].ContextMap()["subscription_id"] != "sub_broken" {
		t.Errorf("unreadable-entry warnings = %v, want one naming sub_broken", warns.All())
	}
	for _, e := range logs.All() {
		if strings.Contains(fmt.Sprint(e.Message, e.ContextMap()), testKey) {
			t.Errorf("log line leaks an API key: %s %v", e.Message, e.ContextMap())
		}
	}
}

// BenchmarkTableMatch measures the hot path with 10,000 subscriptions.
func BenchmarkTableMatch(b *testing.B) {
	var subs []Subscription
	for i := range 10000 {
		subs = append(subs, Subscription{
			ID: fmt.Sprint(i), TenantID: fmt.Sprintf("t%d", i%500), URL: "https://x.example/",
			EventTypes: []event.Type{event.Types[i%5]}, Enabled: true,
		})
	}
	tbl := NewTable(&fakeSource{}, fastCfg, zap.NewNop())
	tbl.cur.Store(newIndex(Snapshot{Subscriptions: subs}))
	ev := event.Event{TenantID: "t7", Type: event.Types[2]}
	b.ReportAllocs()
	for b.Loop() {
		if len(tbl.Match(ev)) == 0 {
			b.Fatal("no match")
		}
	}
}

func pids(subs []*Subscription) string {
	out := make([]string, len(subs))
	for i, s := range subs {
		out[i] = s.ID
	}
	return strings.Join(out, " ")
}

// A Redis that comes back empty (restarted without its data, flushed) is
// not taken for an empty table: the pod keeps delivering from its cache
// until a write starts a new epoch, say an apply of the backup.
func TestTableKeepsCacheWhenRedisLosesTheTable(t *testing.T) {
	cfg := fastCfg
	tbl, store, mr, _ := redisTable(t, cfg)
	ctx := context.Background()
	sub, err := store.Add(ctx, newSub("acme", "https://a.example/", event.PlayerOptedIn))
	if err != nil {
		t.Fatal(err)
	}
	optIn := event.Event{TenantID: "acme", Type: event.PlayerOptedIn}
	waitFor(t, 2*time.Second, "subscription matched", func() bool { return len(tbl.Match(optIn)) == 1 })

	mr.FlushAll()
	waitFor(t, 2*time.Second, "loss reported", func() bool {
		return tbl.Status().LastError == ErrTableLost.Error()
	})
	if !tbl.Status().Unusable {
		t.Fatal("a lost table is reported as Redis being unreachable, not as an unusable table")
	}
	if len(tbl.Match(optIn)) != 1 {
		t.Fatal("the cached table was dropped when Redis lost it")
	}
	if _, err := store.Apply(ctx, []Subscription{sub}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "restored table accepted", func() bool { return tbl.Status().RedisOK && tbl.Status().Version == 1 })
	if len(tbl.Match(optIn)) != 1 {
		t.Fatal("restored subscription not matched")
	}
}
