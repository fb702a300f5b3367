package subscriptions

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/unibo/webhookd/event"
)

func ptr[T any](v T) *T { return &v }

// The update rules every front end shares (CLI update, admin PATCH).
func TestPatchApplyTo(t *testing.T) {
	now := time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)
	oldSecret, newSecret := NewSigningSecret(), NewSigningSecret()
	rotating := validSub()
	rotating.SigningSecret = oldSecret
	rotating.RotateSigningSecret(NewSigningSecret(), now, 24*time.Hour)
	signed := validSub()
	signed.SigningSecret = oldSecret

	tests := []struct {
		name  string
		from  Subscription
		patch Patch
		want  func(*Subscription)
	}{
		{"url only", validSub(), Patch{URL: ptr("https://new.example/")}, func(s *Subscription) { s.URL = "https://new.example/" }},
		{"tenant", validSub(), Patch{TenantID: ptr("globex")}, func(s *Subscription) { s.TenantID = "globex" }},
		{"event types replace the list", validSub(), Patch{EventTypes: &[]event.Type{event.PlayerOptedIn}}, func(s *Subscription) {
			s.EventTypes = []event.Type{event.PlayerOptedIn}
		}},
		{"empty api key removes it", validSub(), Patch{APIKey: ptr("")}, func(s *Subscription) { s.APIKey = "" }},
		{"empty campaign list removes the filter", validSub(), Patch{CampaignIDs: &[]string{}}, func(s *Subscription) { s.CampaignIDs = nil }},
		{"disable", validSub(), Patch{Enabled: ptr(false)}, func(s *Subscription) { s.Enabled = false }},
		{"max attempts", validSub(), Patch{MaxAttempts: ptr(7)}, func(s *Subscription) { s.MaxAttempts = 7 }},
		{"new secret replaces the current one", signed, Patch{SigningSecret: &newSecret}, func(s *Subscription) { s.SigningSecret = newSecret }},
		{"new secret during a rotation ends the rotation: the previous secret stops signing", rotating, Patch{SigningSecret: &newSecret},
			func(s *Subscription) {
				s.SigningSecret, s.PreviousSigningSecret, s.PreviousSecretExpiresAt = newSecret, "", time.Time{}
			}},
		{"empty secret stops signing, during a rotation too", rotating, Patch{SigningSecret: ptr("")}, func(s *Subscription) {
			s.SigningSecret, s.PreviousSigningSecret, s.PreviousSecretExpiresAt = "", "", time.Time{}
		}},
		{"other fields keep a rotation going", rotating, Patch{URL: ptr("https://new.example/")}, func(s *Subscription) { s.URL = "https://new.example/" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.from.clone()
			tt.want(&want)
			got, err := tt.patch.ApplyTo(tt.from)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("ApplyTo =\n%+v\nwant\n%+v", got, want)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("the patched subscription does not validate: %v", err)
			}
			if keys, _ := got.SigningKeys(now.Add(time.Minute)); len(keys) != len(mustKeys(t, want, now.Add(time.Minute))) {
				t.Errorf("signs with %d keys, want %d", len(keys), len(mustKeys(t, want, now.Add(time.Minute))))
			}
		})
	}
	if _, err := (Patch{}).ApplyTo(validSub()); !errors.Is(err, ErrEmptyPatch) {
		t.Errorf("empty patch = %v, want ErrEmptyPatch", err)
	}
	// The patch's lists are copied: a caller reusing them cannot change the result.
	types := []event.Type{event.PlayerOptedIn}
	got, _ := Patch{EventTypes: &types}.ApplyTo(validSub())
	types[0] = event.PlayerOptedOut
	if got.EventTypes[0] != event.PlayerOptedIn {
		t.Error("ApplyTo kept the patch's slice")
	}
}

func mustKeys(t *testing.T, s Subscription, at time.Time) [][]byte {
	t.Helper()
	keys, err := s.SigningKeys(at)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// Through the store the result is validated with the deployment's rules and
// a refused patch writes nothing.
func TestPatchThroughStoreUpdate(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	sub := newSub("acme", "https://a.example/")
	sub.SigningSecret = NewSigningSecret()
	sub = mustAdd(t, s, sub)
	if _, err := s.Update(ctx, sub.ID, Patch{URL: ptr("ftp://a.example/")}.Change); err == nil {
		t.Fatal("an invalid patch was stored")
	}
	if _, err := s.Update(ctx, sub.ID, Patch{}.Change); !errors.Is(err, ErrEmptyPatch) {
		t.Fatalf("empty patch = %v", err)
	}
	got, err := s.Update(ctx, sub.ID, Patch{SigningSecret: ptr("")}.Change)
	if err != nil || got.SigningSecret != "" {
		t.Fatalf("stop signing = %+v, %v", got, err)
	}
	if stored, _ := s.Get(ctx, sub.ID); stored.SigningSecret != "" || stored.URL != sub.URL {
		t.Errorf("stored %+v", stored)
	}
}
