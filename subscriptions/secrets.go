package subscriptions

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/unibo/webhookd/config"
)

// sealedPrefix starts every encrypted value stored in Redis:
// "enc:v1:<key id>:<base64url(nonce || ciphertext)>". The key id is the
// first 8 hex digits of the key's SHA-256, so a value names the key that
// sealed it without revealing it.
const sealedPrefix = "enc:v1:"

// EncryptionKeyBytes is the size of subscriptions.encryption_key (AES-256).
const EncryptionKeyBytes = config.EncryptionKeyBytes

// Sealer encrypts API keys and signing secrets at rest with AES-256-GCM. It
// seals with the current key and opens values sealed with it or with any of
// the previous keys, which is how keys are rotated.
type Sealer struct {
	current sealKey
	byID    map[string]sealKey
}

type sealKey struct {
	id   string
	aead cipher.AEAD
}

// SecretError is a stored secret that cannot be decrypted: the key that
// sealed it is not configured, or the value was tampered with. Loading
// fails rather than delivering without the secret.
type SecretError struct {
	ID    string
	Field string
	// KeyID is the id of the key the value is sealed with, when that key is
	// not configured ("" when the value is malformed or does not open).
	KeyID string
	Err   error
}

func (e *SecretError) Error() string {
	return fmt.Sprintf("subscription %q: %s cannot be decrypted: %v", e.ID, e.Field, e.Err)
}

func (e *SecretError) Unwrap() error { return e.Err }

// NewSealer builds a sealer from base64 keys of 32 bytes: current seals and
// opens, previous only open (keys being rotated out).
func NewSealer(current string, previous []string) (*Sealer, error) {
	k, err := parseSealKey(current)
	if err != nil {
		return nil, fmt.Errorf("encryption key: %w", err)
	}
	s := &Sealer{current: k, byID: map[string]sealKey{k.id: k}}
	for i, p := range previous {
		pk, err := parseSealKey(p)
		if err != nil {
			return nil, fmt.Errorf("previous encryption key %d: %w", i+1, err)
		}
		s.byID[pk.id] = pk
	}
	return s, nil
}

func parseSealKey(b64 string) (sealKey, error) {
	raw, err := config.DecodeEncryptionKey(b64)
	if err != nil {
		return sealKey{}, err
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return sealKey{}, fmt.Errorf("aes: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return sealKey{}, fmt.Errorf("gcm: %w", err)
	}
	sum := sha256.Sum256(raw)
	return sealKey{id: hex.EncodeToString(sum[:4]), aead: aead}, nil
}

// KeyID names the current key in sealed values.
func (s *Sealer) KeyID() string { return s.current.id }

// additionalData binds a sealed value to its subscription, field and URL:
// a ciphertext copied to another subscription or field does not open, and
// neither does one whose subscription was pointed at another URL by someone
// who can write to Redis but does not hold the key (the workers would
// otherwise send the decrypted key there). Every write seals again, so a
// legitimate URL change re-binds.
func additionalData(id, field, url string) []byte {
	return []byte("webhookd/subscription/" + id + "/" + field + "\n" + url)
}

// seal encrypts plain for subscription id's field. Empty stays empty.
func (s *Sealer) seal(id, field, url, plain string) string {
	if plain == "" {
		return ""
	}
	a := s.current.aead
	nonce := make([]byte, a.NonceSize(), a.NonceSize()+len(plain)+a.Overhead())
	_, _ = rand.Read(nonce) // never fails; crashes the program if the OS has no randomness
	sealed := a.Seal(nonce, nonce, []byte(plain), additionalData(id, field, url))
	return sealedPrefix + s.current.id + ":" + base64.RawURLEncoding.EncodeToString(sealed)
}

// sealedWith returns the key id of a sealed value, "" for a clear one.
func sealedWith(v string) string {
	rest, ok := strings.CutPrefix(v, sealedPrefix)
	if !ok {
		return ""
	}
	kid, _, _ := strings.Cut(rest, ":")
	return kid
}

// open decrypts a stored value; a value without the sealed prefix was
// stored in clear (before a key was configured) and is returned as is. The
// sealer may be nil: then only clear values open.
func (s *Sealer) open(id, field, url, stored string) (string, error) {
	rest, ok := strings.CutPrefix(stored, sealedPrefix)
	if !ok {
		return stored, nil
	}
	if s == nil {
		kid := sealedWith(stored)
		return "", &SecretError{ID: id, Field: field, KeyID: kid,
			Err: fmt.Errorf("it is sealed with key %s and subscriptions.encryption_key is not set", kid)}
	}
	kid, b64, ok := strings.Cut(rest, ":")
	if !ok {
		return "", &SecretError{ID: id, Field: field, Err: errors.New("malformed sealed value")}
	}
	k, ok := s.byID[kid]
	if !ok {
		return "", &SecretError{ID: id, Field: field, KeyID: kid,
			Err: fmt.Errorf("sealed with key %s, which is neither subscriptions.encryption_key (%s) nor in subscriptions.previous_encryption_keys", kid, s.current.id)}
	}
	sealed, err := base64.RawURLEncoding.DecodeString(b64)
	if err != nil || len(sealed) < k.aead.NonceSize() {
		return "", &SecretError{ID: id, Field: field, Err: errors.New("malformed sealed value")}
	}
	n := k.aead.NonceSize()
	plain, err := k.aead.Open(nil, sealed[:n], sealed[n:], additionalData(id, field, url))
	if err != nil {
		return "", &SecretError{ID: id, Field: field, Err: errors.New("authentication failed (wrong key, or the value or the subscription's url was changed without the key)")}
	}
	return string(plain), nil
}

// secretFields are the subscription's fields sealed at rest.
func secretFields(s *Subscription) []struct {
	name string
	v    *string
} {
	return []struct {
		name string
		v    *string
	}{{"api_key", &s.APIKey}, {"signing_secret", &s.SigningSecret}, {"previous_signing_secret", &s.PreviousSigningSecret}}
}
