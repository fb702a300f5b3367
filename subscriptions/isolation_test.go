package subscriptions

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/unibo/webhookd/event"
)

// Tenant isolation as a property: with many tenants and random
// subscriptions and events, the table never matches another tenant's
// subscription, and matches exactly what Subscription.Matches says. Nothing
// in an event but its own tenant_id can widen the match.
func TestTenantIsolationProperty(t *testing.T) {
	for seed := uint64(1); seed <= 50; seed++ {
		rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
		tenants := 2 + rng.IntN(30)
		campaigns := []string{"c1", "c2", "c3", "c4"}
		var subs []Subscription
		for i := 0; i < 1+rng.IntN(200); i++ {
			s := Subscription{
				ID:       fmt.Sprintf("s%d", i),
				TenantID: fmt.Sprintf("t%d", rng.IntN(tenants)),
				URL:      fmt.Sprintf("https://p%d.example/hook", i),
				Enabled:  rng.IntN(5) != 0,
			}
			for _, typ := range event.Types {
				if rng.IntN(2) == 0 {
					s.EventTypes = append(s.EventTypes, typ)
				}
			}
			if len(s.EventTypes) == 0 {
				s.EventTypes = []event.Type{event.Types[rng.IntN(len(event.Types))]}
			}
			if rng.IntN(3) == 0 {
				s.CampaignIDs = []string{campaigns[rng.IntN(len(campaigns))]}
			}
			subs = append(subs, s)
		}
		tbl := &Table{}
		tbl.cur.Store(newIndex(Snapshot{Subscriptions: subs, Version: 1}))

		for i := 0; i < 2000; i++ {
			ev := event.Event{
				TenantID:   fmt.Sprintf("t%d", rng.IntN(tenants+2)), // some tenants have no subscription
				Type:       event.Types[rng.IntN(len(event.Types))],
				CampaignID: campaigns[rng.IntN(len(campaigns))],
				PlayerID:   fmt.Sprintf("t%d", rng.IntN(tenants)), // lookalike values elsewhere in the event
				RequestID:  fmt.Sprintf("t%d", rng.IntN(tenants)),
			}
			got := map[string]bool{}
			for _, s := range tbl.Match(ev) {
				if s.TenantID != ev.TenantID {
					t.Fatalf("seed %d: event of %s matched %s of tenant %s", seed, ev.TenantID, s.ID, s.TenantID)
				}
				got[s.ID] = true
			}
			for _, s := range subs {
				if s.Matches(ev) != got[s.ID] {
					t.Fatalf("seed %d: %s (tenant %s, enabled %v, types %v, campaigns %v) matched=%v for %+v",
						seed, s.ID, s.TenantID, s.Enabled, s.EventTypes, s.CampaignIDs, got[s.ID], ev)
				}
			}
		}
	}
}
