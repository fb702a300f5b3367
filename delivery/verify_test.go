package delivery

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/unibo/webhookd/subscriptions"
)

// VerifySignature accepts what the Sender signs (during a rotation with
// either secret) and the specification's test vector, and refuses what a
// partner must refuse.
func TestVerifySignature(t *testing.T) {
	vectorKey, err := subscriptions.DecodeSigningSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	vector := http.Header{}
	vector.Set("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
	vector.Set("webhook-timestamp", "1614265330")
	vector.Set("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
	if err := VerifySignature(vectorKey, vector, []byte(`{"test": 2432232314}`), time.Unix(1614265330, 0)); err != nil {
		t.Fatalf("the specification's test vector: %v", err)
	}

	var c capture
	srv := httptest.NewServer(&c)
	defer srv.Close()
	s := testSender(time.Second)
	defer s.Close()
	old, next := subscriptions.NewSigningSecret(), subscriptions.NewSigningSecret()
	sub := &subscriptions.Subscription{ID: "sub_1", URL: srv.URL, SigningSecret: old}
	sub.RotateSigningSecret(next, time.Now(), time.Hour)
	if res := s.Send(context.Background(), EndpointOf(sub, "msg_v", time.Now()), []byte(`{"amount":100.0}`)); !res.OK() {
		t.Fatal(res.Err)
	}
	h, body := c.last()
	key := func(secret string) []byte {
		k, err := subscriptions.DecodeSigningSecret(secret)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	now := time.Now()
	for _, secret := range []string{old, next} {
		if err := VerifySignature(key(secret), h, body, now); err != nil {
			t.Errorf("a delivery signed during a rotation: %v", err)
		}
	}
	unsigned := h.Clone()
	unsigned.Del("webhook-signature")
	for name, tc := range map[string]struct {
		key  []byte
		h    http.Header
		body []byte
		now  time.Time
		want error
	}{
		"tampered body":        {key(next), h, []byte(`{"amount":900.0}`), now, ErrSignatureMismatch},
		"another secret":       {key(subscriptions.NewSigningSecret()), h, body, now, ErrSignatureMismatch},
		"replayed 6 min later": {key(next), h, body, now.Add(6 * time.Minute), ErrSignatureTimestamp},
		"from 6 min in future": {key(next), h, body, now.Add(-6 * time.Minute), ErrSignatureTimestamp},
		"no signature header":  {key(next), unsigned, body, now, ErrSignatureMissing},
	} {
		if err := VerifySignature(tc.key, tc.h, tc.body, tc.now); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", name, err, tc.want)
		}
	}
}
