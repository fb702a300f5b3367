package subscriptions

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

// FuzzSubscriptionJSON feeds arbitrary JSON to the path every subscription
// input takes (the admin API's bodies, stored entries): decode, Validate.
// It must never panic, a valid subscription must be one the delivery path
// can use, and no error may quote the API key or signing secret.
func FuzzSubscriptionJSON(f *testing.F) {
	f.Add([]byte(`{"tenant_id":"acme","url":"https://a.example/h","event_types":["PLAYER_OPTED_IN"],"api_key":"k-secret-123456"}`))
	f.Add([]byte(`{"tenant_id":" ","url":"ftp://x","event_types":[],"signing_secret":"whsec_abc"}`))
	f.Add([]byte(`{"tenant_id":"t","url":"http://h/","event_types":["PRIZE_PAYOUT_CREATED","PRIZE_PAYOUT_CREATED"],"max_attempts":101}`))
	f.Add([]byte(`{"id":"../../etc","tenant_id":"t","url":"http://h/","event_types":["PLAYER_OPTED_OUT"],"api_key":"a\r\nX-Evil: 1"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var s Subscription
		if json.Unmarshal(raw, &s) != nil {
			return
		}
		err := s.Validate()
		if err != nil {
			// The error may quote the other fields; a secret that is also one
			// of them is not leaked by doing so.
			public := s.ID + "\n" + s.TenantID + "\n" + s.URL + "\n" + strings.Join(s.CampaignIDs, "\n")
			for _, et := range s.EventTypes {
				public += "\n" + string(et)
			}
			for _, secret := range []string{s.APIKey, s.SigningSecret, s.PreviousSigningSecret} {
				if len(secret) >= 8 && strings.Contains(err.Error(), secret) && !strings.Contains(public, secret) {
					t.Fatalf("error %q quotes a secret", err)
				}
			}
			return
		}
		u, perr := url.Parse(s.URL)
		if perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			t.Fatalf("valid subscription with unusable URL %q", s.URL)
		}
		if strings.ContainsAny(s.APIKey, "\r\n\x00") || len(s.EventTypes) == 0 || strings.TrimSpace(s.TenantID) == "" {
			t.Fatalf("valid subscription that cannot be delivered: %+v", s)
		}
		if s.SigningSecret != "" {
			if _, err := DecodeSigningSecret(s.SigningSecret); err != nil {
				t.Fatalf("valid subscription with an unusable signing secret: %v", err)
			}
		}
	})
}
