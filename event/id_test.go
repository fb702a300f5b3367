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

// Ids already on the retry and dead-letter topics, and already seen by
// partners, were made by earlier versions: the same event and subscription
// must keep the same id.
func TestWebhookIDGolden(t *testing.T) {
	want := []string{
		"msg_90070ntdhabc76htg0tcsbkneg", "msg_jypeq5c1f8c6657dmxkvkppear", "msg_t18mya1w9v52n89cack0kywbg4",
		"msg_6pwgspnpmxb845j7p4vzv5y040", "msg_8wspbm2g3t9s9jx93yykkw50dm", "msg_sskxgtdmvtzpexsn5scba46h90",
		"msg_cg8mzecydgcqvsw6cygrxkrz0r", "msg_31exw6kxa8pc2h3j5xq6gfj9hm", "msg_p47gns2pkkjzbsprpds05ajsvc",
	}
	if len(Examples) != len(want) {
		t.Fatalf("%d examples, %d golden ids", len(Examples), len(want))
	}
	for i, ex := range Examples {
		ev, err := Decode([]byte(ex.Domain))
		if err != nil {
			t.Fatal(err)
		}
		ev.Source = Source{Topic: "prize-payouts", Partition: 11, Offset: 1234567890123}
		if got := ev.WebhookID("sub_Ab-9"); got != want[i] {
			t.Errorf("example %d: id %s, want %s", i, got, want[i])
		}
	}
	for _, c := range []struct {
		ev   Event
		sub  string
		want string
	}{
		{Event{TenantID: "t:1", Type: PlayerOptedOut, PlayerID: "p", Source: Source{Topic: "x"}}, "", "msg_q4rnxgbn42fqxdzxssd8kdkrgw"},
		{Event{TenantID: "t", Type: PrizePayoutFailed, PlayerID: "p", CampaignID: "c", Source: Source{Topic: "x", Partition: 2, Offset: 5}}, "s", "msg_n83k1tnze4y9b3n9hfx2edhveg"},
	} {
		if got := c.ev.WebhookID(c.sub); got != c.want {
			t.Errorf("%+v: id %s, want %s", c.ev, got, c.want)
		}
	}
	// Longer than the stack buffer: still the same scheme.
	long := Event{TenantID: strings.Repeat("t", 300), Type: PlayerOptedIn, PlayerID: "p"}
	if got := long.WebhookID("s"); len(got) != 30 || got == long.WebhookID("s2") {
		t.Errorf("long identity: %s", got)
	}
}
