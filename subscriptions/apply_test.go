package subscriptions

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/unibo/webhookd/event"
)

func TestApply(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	clock := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	s.now = func() time.Time { clock = clock.Add(time.Hour); return clock }

	stray := mustAdd(t, s, newSub("initech", "https://stray.example/"))
	keep := newSub("acme", "https://a.example/", event.PrizePayoutCreated)
	keep.APIKey = testKey
	change := newSub("acme", "https://b.example/")
	change.ID = "partner-b"
	desired := []Subscription{keep, change}

	res, err := s.Apply(ctx, desired)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if want := (ApplyResult{Added: 2, Deleted: 1}); res != want {
		t.Errorf("first Apply = %v, want %v", res, want)
	}
	if _, err := s.Get(ctx, stray.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("subscription missing from the file survived: %v", err)
	}
	first, _ := s.List(ctx, "")
	keepID := derivedID("acme", "https://a.example/")
	// Same created_at (one transaction), so sorted by id.
	if got := ids(first); got != "partner-b "+keepID {
		t.Fatalf("table = %s, want partner-b %s", got, keepID)
	}
	v := version(t, s)

	t.Run("same file again changes nothing", func(t *testing.T) {
		res, err := s.Apply(ctx, desired)
		if err != nil {
			t.Fatal(err)
		}
		if want := (ApplyResult{Unchanged: 2}); res != want {
			t.Errorf("Apply = %v, want %v", res, want)
		}
		if again, _ := s.List(ctx, ""); !reflect.DeepEqual(again, first) {
			t.Errorf("table changed:\n%+v\nwant\n%+v", again, first)
		}
		if got := version(t, s); got != v {
			t.Errorf("version = %d, want %d: a no-op apply must not make pods reload", got, v)
		}
	})

	t.Run("changes one, keeps the other untouched", func(t *testing.T) {
		changed := change.clone()
		changed.Enabled = false
		res, err := s.Apply(ctx, []Subscription{keep, changed})
		if err != nil {
			t.Fatal(err)
		}
		if want := (ApplyResult{Updated: 1, Unchanged: 1}); res != want {
			t.Errorf("Apply = %v, want %v", res, want)
		}
		gotKeep, _ := s.Get(ctx, keepID)
		if !reflect.DeepEqual(gotKeep, first[1]) {
			t.Errorf("unchanged entry was rewritten: %+v, want %+v", gotKeep, first[1])
		}
		gotB, _ := s.Get(ctx, "partner-b")
		if gotB.Enabled || !gotB.CreatedAt.Equal(first[0].CreatedAt) || !gotB.UpdatedAt.After(first[0].UpdatedAt) {
			t.Errorf("updated entry = %+v, want disabled, same created_at, later updated_at", gotB)
		}
		if got := version(t, s); got != v+1 {
			t.Errorf("version = %d, want %d: one transaction per apply", got, v+1)
		}
	})

	t.Run("empty list deletes everything", func(t *testing.T) {
		res, err := s.Apply(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if want := (ApplyResult{Deleted: 2}); res != want {
			t.Errorf("Apply = %v, want %v", res, want)
		}
		if all, _ := s.List(ctx, ""); len(all) != 0 {
			t.Errorf("table = %s, want empty", ids(all))
		}
	})
}

func TestApplyRepairsUnreadableEntries(t *testing.T) {
	s, mr := newMiniStore(t)
	want := newSub("acme", "https://a.example/")
	want.ID = "sub_broken"
	mr.HSet(s.hashKey, "sub_broken", "{not json")
	mr.HSet(s.hashKey, "sub_junk", "[]")
	res, err := s.Apply(context.Background(), []Subscription{want})
	if err != nil {
		t.Fatal(err)
	}
	if want := (ApplyResult{Updated: 1, Deleted: 1}); res != want {
		t.Errorf("Apply = %v, want %v", res, want)
	}
	snap, _ := s.Load(context.Background())
	if len(snap.Skipped) != 0 || ids(snap.Subscriptions) != "sub_broken" {
		t.Errorf("after apply: %s, skipped %v", ids(snap.Subscriptions), snap.Skipped)
	}
}

func TestApplyInvalidWritesNothing(t *testing.T) {
	ctx := context.Background()
	a := newSub("acme", "https://a.example/")
	a.ID = "a"
	bad := newSub("acme", "https://b.example/")
	bad.ID = "b"
	bad.EventTypes = []event.Type{"PRIZE_WON"}
	tests := []struct {
		name    string
		desired []Subscription
		index   int
		field   string
		msg     string
	}{
		{"invalid entry", []Subscription{a, bad}, 1, "event_types", `subscriptions[1] (id "b"): field "event_types"`},
		{"duplicate id", []Subscription{a, a}, 1, "id", `id "a" is also used by subscriptions[0]`},
		{"duplicate tenant and url without ids", []Subscription{
			newSub("acme", "https://c.example/"), newSub("acme", "https://c.example/", event.PlayerOptedIn),
		}, 1, "id", "give these explicit ids"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, rdb := newTestStore(t)
			existing := mustAdd(t, s, newSub("initech", "https://i.example/"))
			_, err := s.Apply(ctx, tt.desired)
			var ee *EntryError
			var fe *FieldError
			if !errors.As(err, &ee) || ee.Index != tt.index || !errors.As(err, &fe) || fe.Field != tt.field {
				t.Fatalf("Apply = %v, want entry %d field %s", err, tt.index, tt.field)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("message %q does not contain %q", err, tt.msg)
			}
			all, _ := s.List(ctx, "")
			if ids(all) != existing.ID || rdb.Get(ctx, s.versionKey).Val() != "1" {
				t.Errorf("table = %s at version %s: an invalid apply wrote something", ids(all), rdb.Get(ctx, s.versionKey).Val())
			}
		})
	}
}
