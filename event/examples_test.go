package event

import (
	"encoding/json"
	"testing"
)

// The examples that share a request_id are one payout's events, as the
// partner guide says of request_id: the same tenant, player, campaign,
// currency and prize, one event per type. (make run and send-test --all send
// them to partners, who take them as the guide's word.)
func TestExamplesSharingARequestIDAreOnePayout(t *testing.T) {
	type payout struct {
		name     string
		ev       Event
		currency string
		prize    string
	}
	byRequest := map[string]payout{}
	types := map[string]bool{}
	for _, ex := range Examples {
		ev, err := Decode([]byte(ex.Domain))
		if err != nil {
			t.Fatalf("%s: %v", ex.Name, err)
		}
		if ev.RequestID == "" {
			continue
		}
		var p struct {
			Currency string `json:"player_currency"`
			Prize    string `json:"prize_type"`
		}
		_ = json.Unmarshal(ev.Body, &p)
		this := payout{ex.Name, ev, p.Currency, p.Prize}
		if types[ev.RequestID+string(ev.Type)] {
			t.Errorf("%s: a second %s for request_id %s", ex.Name, ev.Type, ev.RequestID)
		}
		types[ev.RequestID+string(ev.Type)] = true
		first, seen := byRequest[ev.RequestID]
		if !seen {
			byRequest[ev.RequestID] = this
			continue
		}
		if first.ev.TenantID != ev.TenantID || first.ev.PlayerID != ev.PlayerID || first.ev.CampaignID != ev.CampaignID ||
			first.currency != this.currency || first.prize != this.prize {
			t.Errorf("%q and %q share request_id %s but not the payout: %s/%s/%s/%s/%s vs %s/%s/%s/%s/%s", first.name, ex.Name, ev.RequestID,
				first.ev.TenantID, first.ev.PlayerID, first.ev.CampaignID, first.currency, first.prize,
				ev.TenantID, ev.PlayerID, ev.CampaignID, this.currency, this.prize)
		}
	}
}
