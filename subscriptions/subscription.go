package subscriptions

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/unibo/webhookd/config"
	"github.com/unibo/webhookd/event"
)

// Limits enforced by Validate.
const (
	maxURLLen = 2048
	maxIDLen  = 128
	// maxSecretLen bounds an API key: it travels in a header of every request.
	maxSecretLen = 1024
	// maskPrefix is how config.Mask starts a masked secret. A key that starts
	// with it is almost certainly a masked key copied back from `list`.
	maskPrefix = "****"
)

// Subscription routes one tenant's events of the listed types (optionally
// only those of the listed campaigns) to one partner endpoint.
type Subscription struct {
	ID          string       `json:"id" yaml:"id"`
	TenantID    string       `json:"tenant_id" yaml:"tenant_id"`
	URL         string       `json:"url" yaml:"url"`
	EventTypes  []event.Type `json:"event_types" yaml:"event_types"`
	APIKey      string       `json:"api_key,omitempty" yaml:"api_key,omitempty"`
	CampaignIDs []string     `json:"campaign_ids,omitempty" yaml:"campaign_ids,omitempty"`
	Enabled     bool         `json:"enabled" yaml:"enabled"`
	// MaxAttempts overrides delivery.retry.max_attempts for this
	// subscription; 0 keeps the deployment's setting.
	MaxAttempts int `json:"max_attempts,omitempty" yaml:"max_attempts,omitempty"`
	// MaxRate caps this subscription's deliveries per second (a partner's own quota); 0 = no cap beyond the endpoint's adaptive pacing.
	MaxRate float64 `json:"max_rate,omitempty" yaml:"max_rate,omitempty"`
	// SigningSecret, when set, signs every delivery with the Standard
	// Webhooks headers: "whsec_" and the base64 of 24 to 64 random bytes.
	SigningSecret string `json:"signing_secret,omitempty" yaml:"signing_secret,omitempty"`
	// PreviousSigningSecret is the secret a rotation replaced: deliveries are
	// signed with both until PreviousSecretExpiresAt, so a partner can switch
	// its verifier at its own pace.
	PreviousSigningSecret   string    `json:"previous_signing_secret,omitempty" yaml:"previous_signing_secret,omitempty"`
	PreviousSecretExpiresAt time.Time `json:"previous_signing_secret_expires_at,omitzero" yaml:"previous_signing_secret_expires_at,omitempty"`
	CreatedAt               time.Time `json:"created_at" yaml:"created_at"`
	UpdatedAt               time.Time `json:"updated_at" yaml:"updated_at"`
}

// FieldError says which field of a subscription is invalid and why. It never
// carries the API key.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("field %q: %s", e.Field, e.Reason)
}

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Validate checks the subscription and returns the first problem as a
// *FieldError. An empty ID is valid: the store assigns one.
func (s Subscription) Validate() error {
	if s.ID != "" && !validID(s.ID) {
		return fieldErr("id", "must be 1-%d characters of letters, digits, '_', '-', '.' or ':'", maxIDLen)
	}
	switch {
	case strings.TrimSpace(s.TenantID) == "":
		return fieldErr("tenant_id", "must not be empty")
	case strings.TrimSpace(s.TenantID) != s.TenantID:
		return fieldErr("tenant_id", "must not start or end with spaces")
	}
	if err := validateURL(s.URL); err != nil {
		return err
	}
	if len(s.EventTypes) == 0 {
		return fieldErr("event_types", "at least one event type is required")
	}
	for i, t := range s.EventTypes {
		if _, err := event.ParseType(string(t)); err != nil {
			return fieldErr("event_types", "%v", err)
		}
		if slices.Contains(s.EventTypes[:i], t) {
			return fieldErr("event_types", "%s is listed twice", t)
		}
	}
	for i, c := range s.CampaignIDs {
		if strings.TrimSpace(c) == "" {
			return fieldErr("campaign_ids", "entry %d is blank", i)
		}
		if slices.Contains(s.CampaignIDs[:i], c) {
			return fieldErr("campaign_ids", "%q is listed twice", c)
		}
	}
	if s.MaxAttempts < 0 || s.MaxAttempts > 100 {
		return fieldErr("max_attempts", "must be 0 (the deployment's setting) to 100, got %d", s.MaxAttempts)
	}
	// The key goes into an HTTP header: a control character would make every
	// delivery fail. The reasons below must never quote the key.
	if strings.ContainsFunc(s.APIKey, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fieldErr("api_key", "must not contain control characters or line breaks")
	}
	if strings.HasPrefix(s.APIKey, maskPrefix) {
		return fieldErr("api_key", "looks like a masked key (starts with %q); export real keys with --reveal-secrets", maskPrefix)
	}
	if len(s.APIKey) > maxSecretLen {
		return fieldErr("api_key", "must be at most %d characters", maxSecretLen)
	}
	for _, f := range [...]struct{ field, secret string }{{"signing_secret", s.SigningSecret}, {"previous_signing_secret", s.PreviousSigningSecret}} {
		field, secret := f.field, f.secret
		if secret == "" {
			continue
		}
		if strings.HasPrefix(secret, maskPrefix) {
			return fieldErr(field, "looks like a masked secret (starts with %q); export real secrets with --reveal-secrets", maskPrefix)
		}
		if _, err := DecodeSigningSecret(secret); err != nil {
			return fieldErr(field, "%v", err)
		}
	}
	if s.PreviousSigningSecret != "" && s.SigningSecret == "" {
		return fieldErr("previous_signing_secret", "needs a current signing_secret")
	}
	if s.PreviousSigningSecret != "" && s.PreviousSecretExpiresAt.IsZero() {
		return fieldErr("previous_signing_secret_expires_at", "must be set with previous_signing_secret")
	}
	return nil
}

func validateURL(raw string) error {
	const reason = "must be an absolute http or https URL"
	if len(raw) > maxURLLen {
		return fieldErr("url", "must be at most %d characters, got %d", maxURLLen, len(raw))
	}
	if strings.ContainsFunc(raw, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fieldErr("url", "%s without spaces or control characters", reason)
	}
	// The parse error quotes the URL, which may carry a token in its query:
	// report the reason only.
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Opaque != "" {
		return fieldErr("url", reason)
	}
	if u.User != nil {
		return fieldErr("url", "must not contain credentials (user:password@); put the key in api_key")
	}
	if u.Hostname() == "" {
		return fieldErr("url", "%s with a host", reason)
	}
	return nil
}

func validID(id string) bool {
	if id == "" || len(id) > maxIDLen {
		return false
	}
	for _, r := range id {
		ok := r == '_' || r == '-' || r == '.' || r == ':' ||
			(r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
		if !ok {
			return false
		}
	}
	return true
}

// Matches reports whether ev must be delivered to this subscription.
func (s Subscription) Matches(ev event.Event) bool {
	return s.Enabled &&
		s.TenantID == ev.TenantID &&
		slices.Contains(s.EventTypes, ev.Type) &&
		(len(s.CampaignIDs) == 0 || slices.Contains(s.CampaignIDs, ev.CampaignID))
}

// Masked returns a copy whose API key and signing secrets are masked, for
// printing and logging.
func (s Subscription) Masked() Subscription {
	c := s.clone()
	c.APIKey = config.Mask(s.APIKey)
	c.SigningSecret = config.Mask(s.SigningSecret)
	c.PreviousSigningSecret = config.Mask(s.PreviousSigningSecret)
	return c
}

// clone returns a copy that shares no slice with s.
func (s Subscription) clone() Subscription {
	s.EventTypes = slices.Clone(s.EventTypes)
	s.CampaignIDs = slices.Clone(s.CampaignIDs)
	return s
}

// sameContent reports whether a and b route the same events to the same
// endpoint with the same secrets, ignoring timestamps.
func sameContent(a, b Subscription) bool {
	return a.ID == b.ID && len(changedFields(a, b)) == 0
}

// changedFields names, as the apply file and the API do, the fields whose
// values differ between old and next; the id and timestamps are not compared.
func changedFields(old, next Subscription) []string {
	var fields []string
	for _, f := range [...]struct {
		name string
		same bool
	}{
		{"tenant_id", old.TenantID == next.TenantID},
		{"url", old.URL == next.URL},
		{"event_types", slices.Equal(old.EventTypes, next.EventTypes)},
		{"api_key", old.APIKey == next.APIKey},
		{"campaign_ids", slices.Equal(old.CampaignIDs, next.CampaignIDs)},
		{"enabled", old.Enabled == next.Enabled},
		{"max_attempts", old.MaxAttempts == next.MaxAttempts},
		{"signing_secret", old.SigningSecret == next.SigningSecret},
		{"previous_signing_secret", old.PreviousSigningSecret == next.PreviousSigningSecret},
		{"previous_signing_secret_expires_at", old.PreviousSecretExpiresAt.Equal(next.PreviousSecretExpiresAt)},
	} {
		if !f.same {
			fields = append(fields, f.name)
		}
	}
	return fields
}

// removedSecrets names the secrets old has and next no longer has: an API
// key the partner checks, a signing secret it verifies, or a previous
// signing secret still within its grace period at now.
func removedSecrets(old, next Subscription, now time.Time) []string {
	var removed []string
	if old.APIKey != "" && next.APIKey == "" {
		removed = append(removed, "api_key")
	}
	if old.SigningSecret != "" && next.SigningSecret == "" {
		removed = append(removed, "signing_secret")
	}
	if old.PreviousSigningSecret != "" && now.Before(old.PreviousSecretExpiresAt) &&
		next.PreviousSigningSecret == "" && next.SigningSecret != old.PreviousSigningSecret {
		removed = append(removed, "previous_signing_secret")
	}
	return removed
}

// idEncoding is lowercase-friendly base32 (0-9, a-v) without padding.
var idEncoding = base32.HexEncoding.WithPadding(base32.NoPadding)

const idChars = 20 // 100 bits

// NewID returns a random subscription id: "sub_" and 20 lowercase base32
// characters.
func NewID() string {
	var b [13]byte
	_, _ = rand.Read(b[:]) // never fails; crashes the program if the OS has no randomness
	return formatID(b[:])
}

// derivedID is the id of a subscription in an apply file that has none: the
// same tenant and URL always give the same id, so applying a file twice
// changes nothing.
func derivedID(tenantID, rawURL string) string {
	sum := sha256.Sum256([]byte(tenantID + "\n" + rawURL))
	return formatID(sum[:])
}

func formatID(b []byte) string {
	return "sub_" + strings.ToLower(idEncoding.EncodeToString(b))[:idChars]
}
