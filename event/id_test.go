package event

import (
	"strings"
	"testing"
)

func TestWebhookIDIsStablePerEventAndSubscription(t *testing.T) {
	payout, err := Decode([]byte(Examples[0].Domain))
	if err != nil {
		t.Fatal(err)
	}
	payout.Source = Source{Topic: "prize-payouts", Partition: 3, Offset: 42}
	id := payout.WebhookID("sub_a")
	if !strings.HasPrefix(id, "msg_") || len(id) != 4+26 {
		t.Fatalf("id %q", id)
	}
	again := payout
	again.Source.Offset = 99 // the same payout published twice: same identity
	if again.WebhookID("sub_a") != id {
		t.Fatal("a payout's id depends on its offset")
	}
	if payout.WebhookID("sub_b") == id {
		t.Fatal("two subscriptions share an id")
	}
	failed := payout
	failed.Type = PrizePayoutFailed
	if failed.WebhookID("sub_a") == id {
		t.Fatal("two event types of one payout share an id")
	}

	in, _ := Decode([]byte(`{"tenant_id":"t","event_type":"PLAYER_OPTED_IN","player_id":"p","campaign_id":"c"}`))
	in.Source = Source{Topic: "campaign-participation", Partition: 1, Offset: 7}
	second := in
	second.Source.Offset = 8 // the player opted in again later
	if in.WebhookID("sub_a") == second.WebhookID("sub_a") {
		t.Fatal("two opt-ins of one player share an id")
	}
	if in.WebhookID("sub_a") != in.WebhookID("sub_a") {
		t.Fatal("not deterministic")
	}
}
