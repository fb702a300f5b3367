package subscriptions

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/unibo/webhookd/egress"
)

func newKey(t *testing.T) string {
	t.Helper()
	b := make([]byte, EncryptionKeyBytes)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// reopen is a store on the same keys as s, with other options: another
// process configured differently.
func reopen(s *Store, rdb redis.UniversalClient, opts ...StoreOption) *Store {
	return NewStore(rdb, strings.TrimSuffix(s.hashKey, "subscriptions"), opts...)
}

func mustSealer(t *testing.T, current string, previous ...string) *Sealer {
	t.Helper()
	sl, err := NewSealer(current, previous)
	if err != nil {
		t.Fatal(err)
	}
	return sl
}

func TestSecretsAreSealedAtRestAndReadBack(t *testing.T) {
	ctx := context.Background()
	plain, rdb := newTestStore(t)
	key := newKey(t)
	s := reopen(plain, rdb, WithSealer(mustSealer(t, key)))

	sub := newSub("acme", "https://a.example/hook")
	sub.APIKey = "sk_live_SECRET_api_key_123"
	sub.SigningSecret = NewSigningSecret()
	added := mustAdd(t, s, sub)

	raw, err := rdb.HGet(ctx, s.hashKey, added.ID).Result()
	if err != nil {
		t.Fatal(err)
	}
	secretB64 := strings.TrimPrefix(sub.SigningSecret, SigningSecretPrefix)
	if strings.Contains(raw, "SECRET_api_key") || strings.Contains(raw, secretB64) {
		t.Fatalf("a secret is stored in clear: %s", raw)
	}
	if strings.Count(raw, sealedPrefix) != 2 {
		t.Fatalf("want the API key and the signing secret sealed: %s", raw)
	}
	got, err := s.Get(ctx, added.ID)
	if err != nil || got.APIKey != sub.APIKey || got.SigningSecret != sub.SigningSecret {
		t.Fatalf("read back %+v, %v", got, err)
	}
	snap, err := s.Load(ctx)
	if err != nil || len(snap.Subscriptions) != 1 || snap.Subscriptions[0].APIKey != sub.APIKey {
		t.Fatalf("load: %+v, %v", snap, err)
	}

	// A process without the key, or with another one, cannot read the
	// secrets: it fails to load rather than deliver without them.
	for name, other := range map[string]*Store{"no key": plain, "wrong key": reopen(plain, rdb, WithSealer(mustSealer(t, newKey(t))))} {
		_, err := other.Load(ctx)
		var se *SecretError
		if !errors.As(err, &se) || se.ID != added.ID {
			t.Errorf("%s: load gave %v, want a *SecretError naming the subscription", name, err)
		}
		if err != nil && (strings.Contains(err.Error(), "SECRET_api_key") || strings.Contains(err.Error(), key)) {
			t.Errorf("%s: the error quotes a secret: %v", name, err)
		}
	}
}

// A sealed value is bound to its subscription and field: copying it
// elsewhere does not decrypt (nor leak one tenant's key into another's).
func TestSealedValuesDoNotMoveBetweenSubscriptions(t *testing.T) {
	ctx := context.Background()
	plain, rdb := newTestStore(t)
	s := reopen(plain, rdb, WithSealer(mustSealer(t, newKey(t))))
	a := newSub("acme", "https://a.example/")
	a.APIKey = "key-of-acme-1234"
	a = mustAdd(t, s, a)
	b := mustAdd(t, s, newSub("evil", "https://b.example/"))

	rawA, _ := rdb.HGet(ctx, s.hashKey, a.ID).Result()
	rawB, _ := rdb.HGet(ctx, s.hashKey, b.ID).Result()
	start := strings.Index(rawA, `"api_key":"`)
	end := strings.Index(rawA[start+11:], `"`) + start + 11
	stolen := strings.Replace(rawB, `"event_types"`, rawA[start:end+1]+`,"event_types"`, 1)
	rdb.HSet(ctx, s.hashKey, b.ID, stolen)
	if _, err := s.Get(ctx, b.ID); err == nil {
		t.Fatal("a sealed API key copied to another subscription decrypted")
	}
}

func TestKeyRotationWithReencrypt(t *testing.T) {
	ctx := context.Background()
	plain, rdb := newTestStore(t)
	legacy := newSub("acme", "https://legacy.example/")
	legacy.APIKey = "stored-before-encryption"
	legacy = mustAdd(t, plain, legacy) // in clear, as before a key was configured

	k1, k2 := newKey(t), newKey(t)
	s1 := reopen(plain, rdb, WithSealer(mustSealer(t, k1)))
	if got, err := s1.Get(ctx, legacy.ID); err != nil || got.APIKey != legacy.APIKey {
		t.Fatalf("a clear value must stay readable once a key is set: %+v %v", got, err)
	}
	sealed := newSub("acme", "https://sealed.example/")
	sealed.APIKey = "sealed-with-k1"
	sealed = mustAdd(t, s1, sealed)
	if n, err := s1.Reencrypt(ctx); err != nil || n != 1 {
		t.Fatalf("reencrypt with k1: %d, %v; want the clear entry only", n, err)
	}

	// Rotate: k2 seals, k1 still opens.
	s2 := reopen(plain, rdb, WithSealer(mustSealer(t, k2, k1)))
	snap, err := s2.Load(ctx)
	if err != nil || len(snap.Subscriptions) != 2 {
		t.Fatalf("with k2 and previous k1: %+v %v", snap, err)
	}
	if n, err := s2.Reencrypt(ctx); err != nil || n != 2 {
		t.Fatalf("reencrypt with k2: %d, %v", n, err)
	}
	if n, _ := s2.Reencrypt(ctx); n != 0 {
		t.Fatalf("a second reencrypt rewrote %d entries", n)
	}
	// k1 can now go.
	s3 := reopen(plain, rdb, WithSealer(mustSealer(t, k2)))
	for _, want := range []Subscription{legacy, sealed} {
		got, err := s3.Get(ctx, want.ID)
		if err != nil || got.APIKey != want.APIKey {
			t.Fatalf("after rotation %s: %+v %v", want.ID, got, err)
		}
	}
}

func TestSealerRejectsBadKeys(t *testing.T) {
	for _, k := range []string{"", "not base64!", base64.StdEncoding.EncodeToString(make([]byte, 16))} {
		if _, err := NewSealer(k, nil); err == nil {
			t.Errorf("key %q accepted", k)
		}
	}
	if _, err := NewSealer(newKey(t), []string{"short"}); err == nil {
		t.Error("a bad previous key was accepted")
	}
}

func TestWritesObeyTheEgressPolicy(t *testing.T) {
	ctx := context.Background()
	plain, rdb := newTestStore(t)
	pol, _ := egress.New([]string{"10.1.0.0/16"}, true)
	s := reopen(plain, rdb, WithEgress(pol))
	for url, rule := range map[string]string{
		"https://169.254.169.254/latest/meta-data/": "metadata",
		"https://127.0.0.1/":                        "loopback",
		"https://10.2.0.1/":                         "RFC 1918",
		"http://partner.example/":                   "https",
	} {
		_, err := s.Add(ctx, newSub("acme", url))
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != "url" || !strings.Contains(err.Error(), rule) {
			t.Errorf("add %s: %v, want a url error naming %q", url, err, rule)
		}
	}
	ok := mustAdd(t, s, newSub("acme", "https://10.1.2.3/hook")) // opened by allowed_cidrs
	if _, err := s.Update(ctx, ok.ID, func(sub *Subscription) error { sub.URL = "https://[::1]/"; return nil }); err == nil {
		t.Error("update to a loopback URL was accepted")
	}
	if _, err := s.Apply(ctx, []Subscription{newSub("acme", "https://192.168.0.1/")}); err == nil {
		t.Error("apply of a private URL was accepted")
	}
	if snap, _ := s.Load(ctx); len(snap.Subscriptions) != 1 || snap.Subscriptions[0].URL != "https://10.1.2.3/hook" {
		t.Fatalf("refused writes changed the table: %+v", snap.Subscriptions)
	}
}

func TestTenantLimit(t *testing.T) {
	ctx := context.Background()
	plain, rdb := newTestStore(t)
	s := reopen(plain, rdb, WithMaxPerTenant(2))
	a := mustAdd(t, s, newSub("acme", "https://a.example/1"))
	mustAdd(t, s, newSub("acme", "https://a.example/2"))
	other := mustAdd(t, s, newSub("globex", "https://g.example/1"))
	if _, err := s.Add(ctx, newSub("acme", "https://a.example/3")); !errors.Is(err, ErrTenantLimit) {
		t.Fatalf("third subscription of acme: %v", err)
	}
	if _, err := s.Update(ctx, other.ID, func(sub *Subscription) error { sub.TenantID = "acme"; return nil }); !errors.Is(err, ErrTenantLimit) {
		t.Fatalf("moving a subscription to a full tenant: %v", err)
	}
	if _, err := s.Update(ctx, a.ID, func(sub *Subscription) error { sub.URL = "https://a.example/one"; return nil }); err != nil {
		t.Fatalf("updating a subscription of a full tenant: %v", err)
	}
	three := []Subscription{newSub("x", "https://x.example/1"), newSub("x", "https://x.example/2"), newSub("x", "https://x.example/3")}
	if _, err := s.Apply(ctx, three); !errors.Is(err, ErrTenantLimit) {
		t.Fatalf("apply of 3 subscriptions for one tenant: %v", err)
	}
}

func TestSigningSecretValidationAndRotation(t *testing.T) {
	sub := newSub("acme", "https://a.example/")
	for _, bad := range []string{"s3cret", "whsec_not*base64", "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 8)), "****abcd"} {
		sub.SigningSecret = bad
		err := sub.Validate()
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != "signing_secret" || (len(bad) > 8 && strings.Contains(err.Error(), bad)) {
			t.Errorf("secret %q: %v", bad, err)
		}
	}
	first := NewSigningSecret()
	sub.SigningSecret = first
	if err := sub.Validate(); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	second := NewSigningSecret()
	sub.RotateSigningSecret(second, now, time.Hour)
	if sub.SigningSecret != second || sub.PreviousSigningSecret != first || sub.Validate() != nil {
		t.Fatalf("after rotation: %+v", sub)
	}
	if keys, err := sub.SigningKeys(now); len(keys) != 2 || err != nil {
		t.Fatalf("%d keys during the grace period (%v)", len(keys), err)
	}
	if keys, err := sub.SigningKeys(now.Add(2 * time.Hour)); len(keys) != 1 || err != nil {
		t.Fatalf("%d keys after the grace period (%v)", len(keys), err)
	}
	// A secret edited into something unusable never means "send unsigned".
	broken := sub
	broken.SigningSecret = "whsec_broken"
	if keys, err := broken.SigningKeys(now); err == nil || keys != nil {
		t.Fatalf("an unusable secret gave keys %v, err %v", keys, err)
	}
	m := sub.Masked()
	if strings.Contains(m.SigningSecret, second[6:20]) || strings.Contains(m.PreviousSigningSecret, first[6:20]) {
		t.Fatalf("masked copy shows secrets: %+v", m)
	}
}

// Someone who can write to Redis but lacks the key cannot redirect a
// subscription to a server of theirs and collect its decrypted API key:
// the sealed key is bound to the URL.
func TestRedirectingASealedSubscriptionDoesNotDecrypt(t *testing.T) {
	ctx := context.Background()
	plain, rdb := newTestStore(t)
	s := reopen(plain, rdb, WithSealer(mustSealer(t, newKey(t))))
	sub := newSub("acme", "https://partner.example/hook")
	sub.APIKey = "sk_live_bound_to_the_url"
	sub = mustAdd(t, s, sub)
	raw, _ := rdb.HGet(ctx, s.hashKey, sub.ID).Result()
	rdb.HSet(ctx, s.hashKey, sub.ID, strings.Replace(raw, "https://partner.example/hook", "https://attacker.example/", 1))
	if got, err := s.Get(ctx, sub.ID); err == nil {
		t.Fatalf("a redirected subscription decrypted its key: %+v", got)
	}
	// A legitimate URL change goes through the store, which seals again.
	rdb.HSet(ctx, s.hashKey, sub.ID, raw)
	if _, err := s.Update(ctx, sub.ID, func(x *Subscription) error { x.URL = "https://partner.example/v2"; return nil }); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, sub.ID); err != nil || got.APIKey != sub.APIKey {
		t.Fatalf("after a URL update: %+v %v", got, err)
	}
}
