package subscriptions

import (
	"errors"
	"slices"
	"time"

	"github.com/unibo/webhookd/event"
)

// Patch is a partial update of a subscription: the fields that are set
// change, the others keep their values. It is the one update rule of every
// front end: `webhookd subscriptions update` builds it from flags, the admin
// API's PATCH decodes it from JSON (unknown fields refused), and both apply
// it with Store.Update(ctx, id, patch.Change).
//
// The id and timestamps cannot be patched, and neither can the previous
// signing secret: only a rotation (RotateSigningSecret) sets it.
type Patch struct {
	TenantID *string `json:"tenant_id,omitempty"`
	URL      *string `json:"url,omitempty"`
	// EventTypes replaces the list.
	EventTypes *[]event.Type `json:"event_types,omitempty"`
	// APIKey "" removes the key.
	APIKey *string `json:"api_key,omitempty"`
	// CampaignIDs replaces the filter; an empty list removes it (every
	// campaign is delivered).
	CampaignIDs *[]string `json:"campaign_ids,omitempty"`
	Enabled     *bool     `json:"enabled,omitempty"`
	MaxAttempts *int      `json:"max_attempts,omitempty"`
	// SigningSecret replaces the signing secret at once and ends any
	// rotation in progress: the previous secret stops signing too, since
	// "sign with this secret" must not leave another one signing. ""
	// stops signing altogether. To change the secret with a grace period,
	// rotate it instead.
	SigningSecret *string `json:"signing_secret,omitempty"`
}

// ErrEmptyPatch is a patch that changes no field.
var ErrEmptyPatch = errors.New("nothing to update: the patch sets no field")

// Empty reports whether the patch sets no field.
func (p Patch) Empty() bool {
	return p == Patch{}
}

// ApplyTo returns s with the patch's fields changed. It does not validate
// the result: Store.Update does, with the deployment's rules.
func (p Patch) ApplyTo(s Subscription) (Subscription, error) {
	if p.Empty() {
		return Subscription{}, ErrEmptyPatch
	}
	s = s.clone()
	if p.TenantID != nil {
		s.TenantID = *p.TenantID
	}
	if p.URL != nil {
		s.URL = *p.URL
	}
	if p.EventTypes != nil {
		s.EventTypes = slices.Clone(*p.EventTypes)
	}
	if p.APIKey != nil {
		s.APIKey = *p.APIKey
	}
	if p.CampaignIDs != nil {
		s.CampaignIDs = nil
		if len(*p.CampaignIDs) > 0 {
			s.CampaignIDs = slices.Clone(*p.CampaignIDs)
		}
	}
	if p.Enabled != nil {
		s.Enabled = *p.Enabled
	}
	if p.MaxAttempts != nil {
		s.MaxAttempts = *p.MaxAttempts
	}
	if p.SigningSecret != nil {
		s.SigningSecret = *p.SigningSecret
		s.PreviousSigningSecret, s.PreviousSecretExpiresAt = "", time.Time{}
	}
	return s, nil
}

// Change is ApplyTo in the form Store.Update takes.
func (p Patch) Change(s *Subscription) error {
	next, err := p.ApplyTo(*s)
	if err != nil {
		return err
	}
	*s = next
	return nil
}
