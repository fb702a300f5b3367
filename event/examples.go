package event

// Example pairs a domain event as a payout service publishes it with the
// payload the Webhook Integration Guide shows partners for it. The payloads
// are the guide's own examples, byte for byte; the tests hold the renderer to
// them, the demo publishes them, and partner tooling sends them.
type Example struct {
	Name      string
	Type      Type
	PrizeType string // empty for opt-in/out
	// Domain is the Kafka message value: the guide's fields plus tenant_id.
	Domain string
	// Payload is what the partner receives, as printed in the guide.
	Payload string
}

// Examples covers every event type and every prize type of the guide.
var Examples = []Example{
	{
		Name: "cash prize succeeded", Type: PrizePayoutSucceeded, PrizeType: "cash",
		Domain: `{"tenant_id":"tenant-demo","campaign_id":"summer-campaign-2024","request_id":"550e8400-e29b-41d4-a716-446655440000","player_id":"player-abc123","player_currency":"USD","event_type":"PRIZE_PAYOUT_SUCCEEDED","status":"SUCCESS","prize_type":"cash","amount":100.5,"bonus_id":456}`,
		Payload: `{
"campaign_id": "summer-campaign-2024",
"request_id": "550e8400-e29b-41d4-a716-446655440000",
"player_id": "player-abc123",
"player_currency": "USD",
"event_type": "PRIZE_PAYOUT_SUCCEEDED",
"status": "SUCCESS",
"prize_type": "cash",
"amount": 100.5,
"bonus_id": 456
}`,
	},
	{
		Name: "free spins created", Type: PrizePayoutCreated, PrizeType: "free_spins",
		Domain: `{"tenant_id":"tenant-demo","campaign_id":"slot-tournament-2024","request_id":"550e8400-e29b-41d4-a716-446655440001","player_id":"player-def456","player_currency":"EUR","event_type":"PRIZE_PAYOUT_CREATED","status":"TODO","prize_type":"free_spins","amount":50,"game_id":123,"bonus_id":789}`,
		Payload: `{
"campaign_id": "slot-tournament-2024",
"request_id": "550e8400-e29b-41d4-a716-446655440001",
"player_id": "player-def456",
"player_currency": "EUR",
"event_type": "PRIZE_PAYOUT_CREATED",
"status": "TODO",
"prize_type": "free_spins",
"amount": 50,
"game_id": 123,
"bonus_id": 789
}`,
	},
	{
		Name: "bonus amount succeeded", Type: PrizePayoutSucceeded, PrizeType: "bonus_amount",
		Domain: `{"tenant_id":"tenant-demo","campaign_id":"welcome-bonus","request_id":"550e8400-e29b-41d4-a716-446655440002","player_id":"player-ghi789","player_currency":"GBP","event_type":"PRIZE_PAYOUT_SUCCEEDED","status":"SUCCESS","prize_type":"bonus_amount","amount":75.25,"bonus_id":101}`,
		Payload: `{
"campaign_id": "welcome-bonus",
"request_id": "550e8400-e29b-41d4-a716-446655440002",
"player_id": "player-ghi789",
"player_currency": "GBP",
"event_type": "PRIZE_PAYOUT_SUCCEEDED",
"status": "SUCCESS",
"prize_type": "bonus_amount",
"amount": 75.25,
"bonus_id": 101
}`,
	},
	{
		Name: "deposit bonus created", Type: PrizePayoutCreated, PrizeType: "deposit_bonus",
		Domain: `{"tenant_id":"tenant-demo","campaign_id":"deposit-match","request_id":"550e8400-e29b-41d4-a716-446655440003","player_id":"player-jkl012","player_currency":"USD","event_type":"PRIZE_PAYOUT_CREATED","status":"TODO","prize_type":"deposit_bonus","percentage_value":100.0,"bonus_id":202}`,
		Payload: `{
"campaign_id": "deposit-match",
"request_id": "550e8400-e29b-41d4-a716-446655440003",
"player_id": "player-jkl012",
"player_currency": "USD",
"event_type": "PRIZE_PAYOUT_CREATED",
"status": "TODO",
"prize_type": "deposit_bonus",
"percentage_value": 100.0,
"bonus_id": 202
}`,
	},
	{
		Name: "catalog item succeeded", Type: PrizePayoutSucceeded, PrizeType: "catalog_item",
		Domain: `{"tenant_id":"tenant-demo","campaign_id":"loyalty-rewards","request_id":"550e8400-e29b-41d4-a716-446655440004","player_id":"player-mno345","player_currency":"USD","event_type":"PRIZE_PAYOUT_SUCCEEDED","status":"SUCCESS","prize_type":"catalog_item","item":"Gaming Headset","value":25.0,"bonus_id":303}`,
		Payload: `{
"campaign_id": "loyalty-rewards",
"request_id": "550e8400-e29b-41d4-a716-446655440004",
"player_id": "player-mno345",
"player_currency": "USD",
"event_type": "PRIZE_PAYOUT_SUCCEEDED",
"status": "SUCCESS",
"prize_type": "catalog_item",
"item": "Gaming Headset",
"value": 25.0,
"bonus_id": 303
}`,
	},
	{
		// The creation of the cash payout that succeeds above: one payout,
		// so the same request_id, player and campaign (the partner guide:
		// request_id is the same for all the payout's events). The guide's
		// structure example is a created cash payout like it.
		Name: "cash prize created", Type: PrizePayoutCreated, PrizeType: "cash",
		Domain: `{"tenant_id":"tenant-demo","campaign_id":"summer-campaign-2024","request_id":"550e8400-e29b-41d4-a716-446655440000","player_id":"player-abc123","player_currency":"USD","event_type":"PRIZE_PAYOUT_CREATED","status":"TODO","prize_type":"cash","amount":100.5,"bonus_id":456}`,
		Payload: `{
"campaign_id": "summer-campaign-2024",
"request_id": "550e8400-e29b-41d4-a716-446655440000",
"player_id": "player-abc123",
"player_currency": "USD",
"event_type": "PRIZE_PAYOUT_CREATED",
"status": "TODO",
"prize_type": "cash",
"amount": 100.5,
"bonus_id": 456
}`,
	},
	{
		// The guide shows no full failed payload; its test payloads give
		// status FAILED for this event type.
		Name: "cash prize failed", Type: PrizePayoutFailed, PrizeType: "cash",
		Domain: `{"tenant_id":"tenant-demo","campaign_id":"summer-campaign-2024","request_id":"550e8400-e29b-41d4-a716-446655440005","player_id":"player-abc123","player_currency":"USD","event_type":"PRIZE_PAYOUT_FAILED","status":"FAILED","prize_type":"cash","amount":100.5,"bonus_id":456}`,
		Payload: `{
"campaign_id": "summer-campaign-2024",
"request_id": "550e8400-e29b-41d4-a716-446655440005",
"player_id": "player-abc123",
"player_currency": "USD",
"event_type": "PRIZE_PAYOUT_FAILED",
"status": "FAILED",
"prize_type": "cash",
"amount": 100.5,
"bonus_id": 456
}`,
	},
	{
		Name: "player opted in", Type: PlayerOptedIn,
		Domain: `{"tenant_id":"tenant-demo","player_id":"player-abc123","campaign_id":"summer-campaign-2024","event_type":"PLAYER_OPTED_IN"}`,
		Payload: `{
"player_id": "player-abc123",
"campaign_id": "summer-campaign-2024",
"event_type": "PLAYER_OPTED_IN"
}`,
	},
	{
		Name: "player opted out", Type: PlayerOptedOut,
		Domain: `{"tenant_id":"tenant-demo","player_id":"player-def456","campaign_id":"winter-tournament-2024","event_type":"PLAYER_OPTED_OUT"}`,
		Payload: `{
"player_id": "player-def456",
"campaign_id": "winter-tournament-2024",
"event_type": "PLAYER_OPTED_OUT"
}`,
	},
}
