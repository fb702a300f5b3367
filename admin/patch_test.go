package admin_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/unibo/webhookd/event"
	"github.com/unibo/webhookd/subscriptions"
)

// PATCH applies subscriptions.Patch, the CLI's update rules: during a
// rotation a new signing_secret ends it (one signature from then on), ""
// stops signing, and the previous secret is not a field of the patch.
func TestPatchFollowsTheUpdateRules(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	first := subscriptions.NewSigningSecret()
	sub, err := f.store.Add(ctx, subscriptions.Subscription{TenantID: "acme", URL: "https://a.example/", EventTypes: event.Types[:1],
		SigningSecret: first, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	path := "/v1/subscriptions/" + sub.ID
	next, replacement := subscriptions.NewSigningSecret(), subscriptions.NewSigningSecret()
	f.secrets = append(f.secrets, first, replacement) // rotate-secret shows the new secret (next) once, by design
	f.mustCall(http.StatusOK, http.MethodPost, path+"/rotate-secret", `{"grace":"2h","signing_secret":"`+next+`"}`)

	for body, field := range map[string]string{
		`{"previous_signing_secret":"` + first + `"}`:                   "previous_signing_secret",
		`{"previous_signing_secret_expires_at":"2030-01-01T00:00:00Z"}`: "previous_signing_secret_expires_at",
	} {
		if status, m := f.call(http.MethodPatch, path, body); status != http.StatusBadRequest || m["field"] != field {
			t.Errorf("PATCH %s: %d %v, want 400 naming %s", field, status, m, field)
		}
	}
	if stored, _ := f.store.Get(ctx, sub.ID); stored.PreviousSigningSecret != first {
		t.Fatal("a refused PATCH changed the rotation")
	}

	f.mustCall(http.StatusOK, http.MethodPatch, path, `{"signing_secret":"`+replacement+`"}`)
	stored, _ := f.store.Get(ctx, sub.ID)
	if keys, _ := stored.SigningKeys(time.Now()); stored.SigningSecret != replacement || stored.PreviousSigningSecret != "" || len(keys) != 1 {
		t.Fatalf("after PATCH signing_secret during a rotation: %d signing keys, %+v", len(keys), stored.Masked())
	}

	f.mustCall(http.StatusOK, http.MethodPost, path+"/rotate-secret", `{"grace":"2h"}`)
	got := f.mustCall(http.StatusOK, http.MethodPatch, path, `{"signing_secret":""}`)
	if _, ok := got["signing_secret"]; ok {
		t.Errorf("answer still shows a signing secret: %v", got)
	}
	if stored, _ := f.store.Get(ctx, sub.ID); stored.SigningSecret != "" || stored.PreviousSigningSecret != "" {
		t.Fatalf(`after PATCH {"signing_secret":""}: %+v, want no secret`, stored.Masked())
	}
}
