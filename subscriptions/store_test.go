package subscriptions

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/unibo/webhookd/event"
)

// newTestStore returns a store on an empty table: on the real Redis at
// WEBHOOKD_TEST_REDIS_ADDR under a key prefix of its own when that is set, on
// miniredis otherwise. The client lets tests look at the raw keys.
func newTestStore(t *testing.T) (*Store, redis.UniversalClient) {
	t.Helper()
	if addr := os.Getenv("WEBHOOKD_TEST_REDIS_ADDR"); addr != "" {
		rdb := redis.NewClient(&redis.Options{Addr: addr})
		s := NewStore(rdb, fmt.Sprintf("webhookd-test:%s:%s:", t.Name(), NewID()))
		t.Cleanup(func() {
			rdb.Del(context.Background(), s.hashKey, s.versionKey, s.epochKey)
			rdb.Close()
		})
		return s, rdb
	}
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	return NewStore(rdb, "webhookd:"), rdb
}

// newMiniStore is newTestStore for tests that need miniredis itself.
func newMiniStore(t *testing.T) (*Store, *miniredis.Miniredis) {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	return NewStore(rdb, "webhookd:"), mr
}

func newSub(tenant, url string, types ...event.Type) Subscription {
	if len(types) == 0 {
		types = []event.Type{event.PrizePayoutSucceeded}
	}
	return Subscription{TenantID: tenant, URL: url, EventTypes: types, Enabled: true}
}

func mustAdd(t *testing.T, s *Store, sub Subscription) Subscription {
	t.Helper()
	got, err := s.Add(context.Background(), sub)
	if err != nil {
		t.Fatalf("Add: %v", err)
	}
	return got
}

func version(t *testing.T, s *Store) int64 {
	t.Helper()
	v, err := s.Version(context.Background())
	if err != nil {
		t.Fatalf("Version: %v", err)
	}
	return v
}

func TestStoreAddGet(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	if v := version(t, s); v != 0 {
		t.Fatalf("version of an empty table = %d, want 0", v)
	}
	in := validSub()
	in.ID = ""
	added := mustAdd(t, s, in)
	if !idPattern.MatchString(added.ID) {
		t.Errorf("assigned id %q, want the NewID format", added.ID)
	}
	if added.CreatedAt.IsZero() || !added.UpdatedAt.Equal(added.CreatedAt) {
		t.Errorf("timestamps = %v / %v, want set and equal", added.CreatedAt, added.UpdatedAt)
	}
	got, err := s.Get(ctx, added.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if !reflect.DeepEqual(got, added) {
		t.Errorf("Get = %+v\nwant  %+v", got, added)
	}
	if v := version(t, s); v != 1 {
		t.Errorf("version after one add = %d, want 1", v)
	}

	withID := newSub("acme", "https://b.example/")
	withID.ID = "partner-b"
	if got := mustAdd(t, s, withID); got.ID != "partner-b" {
		t.Errorf("Add kept id %q, want partner-b", got.ID)
	}
	_, err = s.Add(ctx, withID)
	if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "partner-b") {
		t.Errorf("Add of a taken id = %v, want ErrExists naming the id", err)
	}
	if v := version(t, s); v != 2 {
		t.Errorf("version after a refused add = %d, want 2", v)
	}
}

func TestStoreAddInvalidWritesNothing(t *testing.T) {
	s, rdb := newTestStore(t)
	bad := newSub("acme", "ftp://a.example/")
	_, err := s.Add(context.Background(), bad)
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "url" {
		t.Fatalf("Add = %v, want a url *FieldError", err)
	}
	if n := rdb.Exists(context.Background(), s.hashKey, s.versionKey).Val(); n != 0 {
		t.Errorf("%d keys written for an invalid subscription, want 0", n)
	}
}

func TestStoreGetNotFound(t *testing.T) {
	s, _ := newTestStore(t)
	_, err := s.Get(context.Background(), "sub_missing")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "sub_missing") {
		t.Errorf("Get = %v, want ErrNotFound naming the id", err)
	}
}

func TestStoreList(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	clock := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	s.now = func() time.Time { clock = clock.Add(time.Second); return clock }
	add := func(id, tenant string) {
		sub := newSub(tenant, "https://"+id+".example/")
		sub.ID = id
		mustAdd(t, s, sub)
	}
	add("z", "globex")
	add("b", "acme")
	add("a", "acme")
	add("y", "globex")

	all, err := s.List(ctx, "")
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if got, want := ids(all), "b a z y"; got != want {
		t.Errorf("List(all) = %s, want %s (tenant, then created_at)", got, want)
	}
	acme, err := s.List(ctx, "acme")
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if got, want := ids(acme), "b a"; got != want {
		t.Errorf("List(acme) = %s, want %s", got, want)
	}
	none, err := s.List(ctx, "initech")
	if err != nil || len(none) != 0 {
		t.Errorf("List(initech) = %v, %v, want nothing", none, err)
	}
}

func ids(subs []Subscription) string {
	out := make([]string, len(subs))
	for i, s := range subs {
		out[i] = s.ID
	}
	return strings.Join(out, " ")
}

func TestStoreUpdate(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	clock := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	s.now = func() time.Time { clock = clock.Add(time.Minute); return clock }
	orig := mustAdd(t, s, validSub())

	got, err := s.Update(ctx, orig.ID, func(sub *Subscription) error {
		sub.URL = "https://new.example/hook"
		sub.ID = "renamed"          // ignored
		sub.CreatedAt = time.Time{} // ignored
		return nil
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	want := orig.clone()
	want.URL = "https://new.example/hook"
	want.UpdatedAt = orig.UpdatedAt.Add(time.Minute)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Update = %+v\nwant     %+v", got, want)
	}
	if stored, _ := s.Get(ctx, orig.ID); !reflect.DeepEqual(stored, want) {
		t.Errorf("stored = %+v\nwant     %+v", stored, want)
	}
	if v := version(t, s); v != 2 {
		t.Errorf("version = %d, want 2", v)
	}

	t.Run("no change writes nothing", func(t *testing.T) {
		got, err := s.Update(ctx, orig.ID, func(sub *Subscription) error { sub.Enabled = true; return nil })
		if err != nil || !got.UpdatedAt.Equal(want.UpdatedAt) {
			t.Errorf("Update = %v, %v; want unchanged UpdatedAt %v", got.UpdatedAt, err, want.UpdatedAt)
		}
		if v := version(t, s); v != 2 {
			t.Errorf("version = %d, want 2", v)
		}
	})
	t.Run("invalid result writes nothing", func(t *testing.T) {
		_, err := s.Update(ctx, orig.ID, func(sub *Subscription) error { sub.EventTypes = []event.Type{"NOPE"}; return nil })
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != "event_types" {
			t.Errorf("Update = %v, want an event_types *FieldError", err)
		}
		if stored, _ := s.Get(ctx, orig.ID); !reflect.DeepEqual(stored, want) {
			t.Errorf("stored = %+v, want it unchanged", stored)
		}
		if v := version(t, s); v != 2 {
			t.Errorf("version = %d, want 2", v)
		}
	})
	t.Run("change error is returned", func(t *testing.T) {
		boom := errors.New("boom")
		if _, err := s.Update(ctx, orig.ID, func(*Subscription) error { return boom }); !errors.Is(err, boom) {
			t.Errorf("Update = %v, want boom", err)
		}
	})
	t.Run("unknown id", func(t *testing.T) {
		_, err := s.Update(ctx, "sub_missing", func(*Subscription) error { return nil })
		if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "sub_missing") {
			t.Errorf("Update = %v, want ErrNotFound naming the id", err)
		}
	})
}

func TestStoreConcurrentUpdatesLoseNothing(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	sub := mustAdd(t, s, newSub("acme", "https://a.example/"))
	const writers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				_, err := s.Update(ctx, sub.ID, func(sub *Subscription) error {
					sub.CampaignIDs = append(sub.CampaignIDs, fmt.Sprintf("c-%d-%d", w, i))
					return nil
				})
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Update: %v", err)
	}
	got, err := s.Get(ctx, sub.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.CampaignIDs) != writers*each {
		t.Errorf("%d campaigns after %d concurrent updates, want %d: writes were lost", len(got.CampaignIDs), writers*each, writers*each)
	}
	if v := version(t, s); v != 1+writers*each {
		t.Errorf("version = %d, want %d", v, 1+writers*each)
	}
}

func TestStoreDelete(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	a := mustAdd(t, s, newSub("acme", "https://a.example/"))
	b := mustAdd(t, s, newSub("acme", "https://b.example/"))
	if err := s.Delete(ctx, a.ID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Get(ctx, a.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Delete = %v, want ErrNotFound", err)
	}
	if all, _ := s.List(ctx, ""); ids(all) != b.ID {
		t.Errorf("List after Delete = %s, want %s", ids(all), b.ID)
	}
	err := s.Delete(ctx, a.ID)
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), a.ID) {
		t.Errorf("second Delete = %v, want ErrNotFound naming the id", err)
	}
	if v := version(t, s); v != 3 {
		t.Errorf("version = %d, want 3 (a refused delete does not count)", v)
	}
}

func TestStorePublishesEveryWrite(t *testing.T) {
	ctx := context.Background()
	s, rdb := newTestStore(t)
	ps := rdb.Subscribe(ctx, s.channel)
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil { // the subscription confirmation
		t.Fatal(err)
	}
	sub := mustAdd(t, s, newSub("acme", "https://a.example/"))
	if _, err := s.Update(ctx, sub.ID, func(s *Subscription) error { s.Enabled = false; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, sub.ID); err != nil {
		t.Fatal(err)
	}
	for want := 1; want <= 3; want++ {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		msg, err := ps.ReceiveMessage(rctx)
		cancel()
		if err != nil {
			t.Fatalf("message %d: %v", want, err)
		}
		if msg.Payload != fmt.Sprint(want) {
			t.Errorf("message payload = %q, want the new version %d", msg.Payload, want)
		}
	}
}

func TestStoreLoadSkipsUnreadableEntries(t *testing.T) {
	ctx := context.Background()
	s, mr := newMiniStore(t)
	good := mustAdd(t, s, newSub("acme", "https://a.example/"))
	mr.HSet(s.hashKey, "sub_broken", "{not json")
	mr.HSet(s.hashKey, "sub_moved", `{"id":"sub_other","tenant_id":"acme"}`)

	snap, err := s.Load(ctx)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if ids(snap.Subscriptions) != good.ID || snap.Version != 1 {
		t.Errorf("Load = %s at version %d, want %s at 1", ids(snap.Subscriptions), snap.Version, good.ID)
	}
	if len(snap.Skipped) != 2 || snap.Skipped[0].ID != "sub_broken" || snap.Skipped[1].ID != "sub_moved" {
		t.Fatalf("Skipped = %v, want sub_broken and sub_moved", snap.Skipped)
	}
	if list, err := s.List(ctx, ""); err != nil || len(list) != 1 {
		t.Errorf("List = %d entries, %v; want the readable one", len(list), err)
	}
	// Deleting a broken entry works without reading it.
	if err := s.Delete(ctx, "sub_broken"); err != nil {
		t.Errorf("Delete of a broken entry: %v", err)
	}
}
