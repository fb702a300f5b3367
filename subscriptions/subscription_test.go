package subscriptions

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/unibo/webhookd/event"
)

const testKey = "sk_live_0123456789abcdef"

func validSub() Subscription {
	return Subscription{
		ID:          "sub_a",
		TenantID:    "acme",
		URL:         "https://hooks.acme.example/prizes?v=1",
		EventTypes:  []event.Type{event.PrizePayoutSucceeded, event.PrizePayoutFailed},
		APIKey:      testKey,
		CampaignIDs: []string{"summer"},
		Enabled:     true,
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Subscription)
		field  string // "" = valid
		reason string // substring of the reason
	}{
		{"valid", func(*Subscription) {}, "", ""},
		{"valid without id, key or campaigns", func(s *Subscription) { s.ID, s.APIKey, s.CampaignIDs = "", "", nil }, "", ""},
		{"http with port", func(s *Subscription) { s.URL = "http://10.0.0.1:8080/hook" }, "", ""},
		{"upper-case scheme", func(s *Subscription) { s.URL = "HTTPS://hooks.example/x" }, "", ""},
		{"bad id", func(s *Subscription) { s.ID = "has space" }, "id", "letters, digits"},
		{"long id", func(s *Subscription) { s.ID = strings.Repeat("a", 129) }, "id", ""},
		{"empty tenant", func(s *Subscription) { s.TenantID = "" }, "tenant_id", "must not be empty"},
		{"blank tenant", func(s *Subscription) { s.TenantID = "  \t" }, "tenant_id", "must not be empty"},
		{"tenant with spaces", func(s *Subscription) { s.TenantID = " acme" }, "tenant_id", "spaces"},
		{"empty url", func(s *Subscription) { s.URL = "" }, "url", "absolute http or https URL"},
		{"relative url", func(s *Subscription) { s.URL = "/hooks/prizes" }, "url", "absolute http or https URL"},
		{"scheme-relative url", func(s *Subscription) { s.URL = "//hooks.example/x" }, "url", "absolute http or https URL"},
		{"ftp url", func(s *Subscription) { s.URL = "ftp://hooks.example/x" }, "url", "absolute http or https URL"},
		{"opaque url", func(s *Subscription) { s.URL = "https:hooks.example" }, "url", "absolute http or https URL"},
		{"no host", func(s *Subscription) { s.URL = "https:///path" }, "url", "with a host"},
		{"port only", func(s *Subscription) { s.URL = "https://:443/path" }, "url", "with a host"},
		{"bad port", func(s *Subscription) { s.URL = "https://hooks.example:http/x" }, "url", "absolute http or https URL"},
		{"credentials", func(s *Subscription) { s.URL = "https://user:pw@hooks.example/x" }, "url", "credentials"},
		{"space", func(s *Subscription) { s.URL = "https://hooks.example/a b" }, "url", "spaces"},
		{"too long", func(s *Subscription) { s.URL = "https://h.example/" + strings.Repeat("a", 2048) }, "url", "at most 2048"},
		{"no event types", func(s *Subscription) { s.EventTypes = nil }, "event_types", "at least one"},
		{"unknown event type", func(s *Subscription) { s.EventTypes = []event.Type{"PRIZE_PAYOUT_DONE"} }, "event_types", `unknown event type "PRIZE_PAYOUT_DONE"`},
		{"lower-case event type", func(s *Subscription) { s.EventTypes = []event.Type{"player_opted_in"} }, "event_types", "unknown event type"},
		{"duplicate event type", func(s *Subscription) {
			s.EventTypes = []event.Type{event.PlayerOptedIn, event.PlayerOptedOut, event.PlayerOptedIn}
		}, "event_types", "PLAYER_OPTED_IN is listed twice"},
		{"blank campaign", func(s *Subscription) { s.CampaignIDs = []string{"summer", " "} }, "campaign_ids", "entry 1 is blank"},
		{"duplicate campaign", func(s *Subscription) { s.CampaignIDs = []string{"summer", "summer"} }, "campaign_ids", "listed twice"},
		{"api key with newline", func(s *Subscription) { s.APIKey = testKey + "\r\nX-Evil: 1" }, "api_key", "control characters"},
		{"masked api key", func(s *Subscription) { s.APIKey = "****cdef" }, "api_key", "masked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := validSub()
			tt.change(&s)
			err := s.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Validate() = %v, want a *FieldError for %q", err, tt.field)
			}
			if fe.Field != tt.field || !strings.Contains(fe.Reason, tt.reason) {
				t.Errorf("Validate() = %v, want field %q with reason containing %q", err, tt.field, tt.reason)
			}
			if !strings.Contains(err.Error(), `field "`+tt.field+`"`) {
				t.Errorf("message %q does not name the field", err)
			}
			if s.APIKey != "" && strings.Contains(err.Error(), s.APIKey) {
				t.Errorf("message %q leaks the API key", err)
			}
		})
	}
}

func TestFieldErrorMessage(t *testing.T) {
	s := validSub()
	s.URL = "mailto:ops@acme.example"
	if got, want := s.Validate().Error(), `field "url": must be an absolute http or https URL`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestMatches(t *testing.T) {
	base := validSub() // acme, SUCCEEDED+FAILED, campaign summer
	ev := event.Event{TenantID: "acme", Type: event.PrizePayoutSucceeded, CampaignID: "summer"}
	tests := []struct {
		name   string
		change func(*Subscription, *event.Event)
		want   bool
	}{
		{"match", func(*Subscription, *event.Event) {}, true},
		{"other tenant", func(_ *Subscription, e *event.Event) { e.TenantID = "globex" }, false},
		{"tenant is case-sensitive", func(_ *Subscription, e *event.Event) { e.TenantID = "ACME" }, false},
		{"type not subscribed", func(_ *Subscription, e *event.Event) { e.Type = event.PrizePayoutCreated }, false},
		{"other campaign", func(_ *Subscription, e *event.Event) { e.CampaignID = "winter" }, false},
		{"no campaign on event", func(_ *Subscription, e *event.Event) { e.CampaignID = "" }, false},
		{"no campaign filter", func(s *Subscription, e *event.Event) { s.CampaignIDs = nil; e.CampaignID = "winter" }, true},
		{"disabled", func(s *Subscription, _ *event.Event) { s.Enabled = false }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, e := base.clone(), ev
			tt.change(&s, &e)
			if got := s.Matches(e); got != tt.want {
				t.Errorf("Matches() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMasked(t *testing.T) {
	s := validSub()
	m := s.Masked()
	if m.APIKey != "****cdef" {
		t.Errorf("masked key = %q, want ****cdef", m.APIKey)
	}
	if s.APIKey != testKey {
		t.Errorf("Masked changed the original's key")
	}
	m.CampaignIDs[0] = "changed"
	if s.CampaignIDs[0] != "summer" {
		t.Errorf("Masked shares its campaign slice with the original")
	}
	if got := (Subscription{}).Masked().APIKey; got != "" {
		t.Errorf("masking no key = %q, want empty", got)
	}
}

var idPattern = regexp.MustCompile(`^sub_[0-9a-v]{20}$`)

func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := NewID()
		if !idPattern.MatchString(id) {
			t.Fatalf("NewID() = %q, want sub_ + 20 lowercase base32 characters", id)
		}
		if seen[id] {
			t.Fatalf("NewID() repeated %q", id)
		}
		seen[id] = true
	}
}

func TestDerivedID(t *testing.T) {
	a := derivedID("acme", "https://a.example/x")
	if !idPattern.MatchString(a) {
		t.Fatalf("derivedID = %q, want the NewID format", a)
	}
	if derivedID("acme", "https://a.example/x") != a {
		t.Error("derivedID is not deterministic")
	}
	if derivedID("acme2", "https://a.example/x") == a || derivedID("acme", "https://a.example/y") == a {
		t.Error("derivedID ignores the tenant or the URL")
	}
	// The separator keeps tenant and URL apart.
	if derivedID("a", "bhttps://x") == derivedID("ab", "https://x") {
		t.Error("derivedID confuses tenant/URL boundaries")
	}
}

func FuzzValidate(f *testing.F) {
	f.Add("acme", "https://hooks.example/x", "PRIZE_PAYOUT_CREATED", "c1", testKey)
	f.Add(" ", "http://user:pw@h/", "FOO", "", "****")
	f.Add("t", "https://[::1]:80/x", "PLAYER_OPTED_IN", " ", "k\n")
	f.Fuzz(func(t *testing.T, tenant, rawURL, typ, campaign, key string) {
		// The marker shows whether the key ends up in the message.
		key = "LEAK" + key
		s := Subscription{TenantID: tenant, URL: rawURL, EventTypes: []event.Type{event.Type(typ)}, APIKey: key}
		if campaign != "" {
			s.CampaignIDs = []string{campaign}
		}
		err := s.Validate()
		if err == nil {
			return
		}
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field == "" {
			t.Fatalf("Validate() = %v, want a *FieldError naming a field", err)
		}
		if strings.Contains(err.Error(), "LEAK") && !strings.Contains(tenant+rawURL+typ+campaign, "LEAK") {
			t.Fatalf("error %q leaks the API key", err)
		}
	})
}
