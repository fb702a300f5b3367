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
	keepID := derivedID("acme", "https://a.example/")

	t.Run("deleting needs Prune", func(t *testing.T) {
		v := version(t, s)
		_, err := s.Apply(ctx, desired)
		var refused *DeleteRefusedError
		if !errors.As(err, &refused) || !reflect.DeepEqual(refused.IDs, []string{stray.ID}) {
			t.Fatalf("Apply without Prune = %v, want a *DeleteRefusedError naming %s", err, stray.ID)
		}
		if all, _ := s.List(ctx, ""); ids(all) != stray.ID || version(t, s) != v {
			t.Errorf("a refused apply wrote: table %s, version %d (was %d)", ids(all), version(t, s), v)
		}
	})

	t.Run("a dry run plans and writes nothing", func(t *testing.T) {
		v := version(t, s)
		res, err := s.ApplyWith(ctx, desired, ApplyOptions{DryRun: true})
		if err != nil {
			t.Fatal(err)
		}
		want := []Change{{Action: Added, ID: keepID}, {Action: Added, ID: "partner-b"}, {Action: Deleted, ID: stray.ID}}
		if !reflect.DeepEqual(res.Changes, want) || !res.DryRun {
			t.Errorf("dry run = %+v, want %+v", res, want)
		}
		if res.Refused == nil || !reflect.DeepEqual(res.Refused.IDs, []string{stray.ID}) {
			t.Errorf("dry run without Prune: Refused %+v, want the deletion the apply refuses", res.Refused)
		}
		want1 := "dry run, nothing written: the apply would be refused and write nothing, as it would delete 1 subscription (" + stray.ID +
			") without being allowed to; allowed to, it would have added 2, updated 0, deleted 1, unchanged 0"
		if got := res.String(); got != want1 {
			t.Errorf("summary %q\nwant    %q", got, want1)
		}
		pruned, err := s.ApplyWith(ctx, desired, ApplyOptions{DryRun: true, Prune: true})
		if err != nil || pruned.Refused != nil || !reflect.DeepEqual(pruned.Changes, want) {
			t.Fatalf("dry run with Prune = %+v, %v", pruned, err)
		}
		if got := pruned.String(); got != "dry run, nothing written: would have added 2, updated 0, deleted 1, unchanged 0" {
			t.Errorf("summary %q", got)
		}
		if all, _ := s.List(ctx, ""); ids(all) != stray.ID || version(t, s) != v {
			t.Errorf("a dry run wrote: table %s, version %d (was %d)", ids(all), version(t, s), v)
		}
	})

	res, err := s.ApplyWith(ctx, desired, ApplyOptions{Prune: true})
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if got := res.String(); got != "added 2, updated 0, deleted 1, unchanged 0" {
		t.Errorf("first Apply = %q", got)
	}
	if _, err := s.Get(ctx, stray.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("subscription missing from the file survived: %v", err)
	}
	first, _ := s.List(ctx, "")
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
		if len(res.Changes) != 0 || res.Unchanged != 2 {
			t.Errorf("Apply = %v, want 2 unchanged", res)
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
		changed.MaxAttempts = 3
		res, err := s.Apply(ctx, []Subscription{keep, changed})
		if err != nil {
			t.Fatal(err)
		}
		want := []Change{{Action: Updated, ID: "partner-b", Fields: []string{"enabled", "max_attempts"}}}
		if !reflect.DeepEqual(res.Changes, want) || res.Unchanged != 1 {
			t.Errorf("Apply = %+v, want %+v and 1 unchanged", res, want)
		}
		if line := res.Lines()[0]; line != "updated partner-b: enabled, max_attempts" {
			t.Errorf("line %q", line)
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

	t.Run("empty list with Prune deletes everything", func(t *testing.T) {
		res, err := s.ApplyWith(ctx, nil, ApplyOptions{Prune: true})
		if err != nil {
			t.Fatal(err)
		}
		if got := res.String(); got != "added 0, updated 0, deleted 2, unchanged 0" {
			t.Errorf("Apply = %q", got)
		}
		if all, _ := s.List(ctx, ""); len(all) != 0 {
			t.Errorf("table = %s, want empty", ids(all))
		}
	})
}

// A confirmed plan deletes what the user saw and nothing else: an entry
// added since makes the apply fail without writing.
func TestApplyPruneOnlyDeletesWhatWasConfirmed(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	a := mustAdd(t, s, newSub("acme", "https://a.example/"))
	plan, err := s.ApplyWith(ctx, nil, ApplyOptions{DryRun: true})
	if err != nil || !reflect.DeepEqual(plan.Deleted(), []string{a.ID}) {
		t.Fatalf("plan = %+v, %v", plan, err)
	}
	b := mustAdd(t, s, newSub("acme", "https://b.example/"))
	_, err = s.ApplyWith(ctx, nil, ApplyOptions{Prune: true, PruneOnly: plan.Deleted()})
	var refused *DeleteRefusedError
	if !errors.As(err, &refused) || !refused.Unconfirmed || !reflect.DeepEqual(refused.IDs, []string{b.ID}) {
		t.Fatalf("apply of a stale confirmation = %v, want a refusal naming %s", err, b.ID)
	}
	if all, _ := s.List(ctx, ""); len(all) != 2 {
		t.Errorf("a refused apply deleted: table %s", ids(all))
	}
}

// Re-applying a backup changes nothing; applying a file that lacks the
// secrets of live subscriptions says, per subscription, what it removes.
func TestApplyReportsSecretsItRemoves(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	now := time.Now().UTC().Truncate(time.Second)
	signed := newSub("acme", "https://signed.example/")
	signed.ID, signed.SigningSecret, signed.APIKey = "signed", NewSigningSecret(), testKey
	rotating := newSub("acme", "https://rotating.example/")
	rotating.ID, rotating.SigningSecret = "rotating", NewSigningSecret()
	rotating.RotateSigningSecret(NewSigningSecret(), now, time.Hour)
	if _, err := s.Apply(ctx, []Subscription{signed, rotating}); err != nil {
		t.Fatal(err)
	}
	if res, err := s.Apply(ctx, []Subscription{signed, rotating}); err != nil || res.String() != "added 0, updated 0, deleted 0, unchanged 2" {
		t.Fatalf("re-applying the same secrets = %v, %v", res, err)
	}

	stripped := []Subscription{signed.clone(), rotating.clone()}
	stripped[0].SigningSecret, stripped[0].APIKey = "", ""
	stripped[1].PreviousSigningSecret, stripped[1].PreviousSecretExpiresAt = "", time.Time{}
	res, err := s.ApplyWith(ctx, stripped, ApplyOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	want := "dry run, nothing written: would have added 0, updated 2, deleted 0, unchanged 0; " +
		"would remove API key and signing secret of signed; would remove previous signing secret of rotating"
	if res.String() != want {
		t.Errorf("dry run summary\n%q\nwant\n%q", res.String(), want)
	}
	if line := res.Lines()[0]; line != "update signed: api_key, signing_secret (removes its API key and signing secret)" {
		t.Errorf("plan line %q", line)
	}
	res, err = s.Apply(ctx, stripped)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(res.String(), "; removed API key and signing secret of signed; removed previous signing secret of rotating") {
		t.Errorf("summary %q does not name the secrets removed", res)
	}
	if got, _ := s.Get(ctx, "signed"); got.SigningSecret != "" {
		t.Errorf("the apply did not apply: %+v", got)
	}
}

func TestApplyRepairsUnreadableEntries(t *testing.T) {
	s, mr := newMiniStore(t)
	want := newSub("acme", "https://a.example/")
	want.ID = "sub_broken"
	mr.HSet(s.hashKey, "sub_broken", "{not json")
	mr.HSet(s.hashKey, "sub_junk", "[]")
	res, err := s.ApplyWith(context.Background(), []Subscription{want}, ApplyOptions{Prune: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.String(); got != "added 0, updated 1, deleted 1, unchanged 0" {
		t.Errorf("Apply = %q", got)
	}
	if line := res.Lines()[0]; line != "updated sub_broken (replaces an unreadable entry)" {
		t.Errorf("line %q", line)
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
