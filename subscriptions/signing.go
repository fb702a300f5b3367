package subscriptions

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
)

// SigningSecretPrefix starts every signing secret, as in Standard Webhooks.
const SigningSecretPrefix = "whsec_"

// Signing secret sizes the Standard Webhooks specification allows.
const (
	minSecretBytes = 24
	maxSecretBytes = 64
	// newSecretBytes is the size of generated secrets.
	newSecretBytes = 32
)

// NewSigningSecret returns a fresh random signing secret.
func NewSigningSecret() string {
	b := make([]byte, newSecretBytes)
	_, _ = rand.Read(b) // never fails; crashes the program if the OS has no randomness
	return SigningSecretPrefix + base64.StdEncoding.EncodeToString(b)
}

// DecodeSigningSecret returns the HMAC key of a "whsec_<base64>" secret. The
// error never quotes the secret.
func DecodeSigningSecret(secret string) ([]byte, error) {
	b64, ok := strings.CutPrefix(secret, SigningSecretPrefix)
	if !ok {
		return nil, fmt.Errorf("must start with %q", SigningSecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, errors.New("must be " + SigningSecretPrefix + " followed by standard base64")
	}
	if len(key) < minSecretBytes || len(key) > maxSecretBytes {
		return nil, fmt.Errorf("must encode %d to %d bytes, got %d", minSecretBytes, maxSecretBytes, len(key))
	}
	return key, nil
}

// SigningKeys returns the HMAC keys deliveries are signed with at now: the
// current secret's, then the previous one's while its grace period lasts.
// None when the subscription has no signing secret. A stored secret that
// does not decode (edited in Redis by hand) is an error, never a reason to
// send unsigned: the caller fails the delivery instead.
func (s *Subscription) SigningKeys(now time.Time) ([][]byte, error) {
	if s.SigningSecret == "" {
		return nil, nil
	}
	keys := make([][]byte, 0, 2)
	k, err := DecodeSigningSecret(s.SigningSecret)
	if err != nil {
		return nil, fmt.Errorf("subscription %s: signing_secret %w", s.ID, err)
	}
	keys = append(keys, k)
	if s.PreviousSigningSecret != "" && now.Before(s.PreviousSecretExpiresAt) {
		k, err := DecodeSigningSecret(s.PreviousSigningSecret)
		if err != nil {
			return nil, fmt.Errorf("subscription %s: previous_signing_secret %w", s.ID, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// RotateSigningSecret makes next the signing secret and keeps the current
// one valid until now+grace. With a zero grace the old secret stops at once.
func (s *Subscription) RotateSigningSecret(next string, now time.Time, grace time.Duration) {
	if s.SigningSecret != "" && grace > 0 {
		s.PreviousSigningSecret = s.SigningSecret
		s.PreviousSecretExpiresAt = now.Add(grace).UTC().Truncate(time.Second)
	} else {
		s.PreviousSigningSecret = ""
		s.PreviousSecretExpiresAt = time.Time{}
	}
	s.SigningSecret = next
}
