package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func compact(t testing.TB, s string) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		t.Fatalf("compact %q: %v", s, err)
	}
	return b.String()
}

// The guide's examples are golden: the rendered body must be the guide's
// payload with its whitespace removed, keys in the guide's order, numbers as
// written (100.0 stays 100.0, 50 stays 50).
func TestDecodeRendersGuideExamples(t *testing.T) {
	for _, ex := range Examples {
		t.Run(ex.Name, func(t *testing.T) {
			ev, err := Decode([]byte(ex.Domain))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if got, want := string(ev.Body), compact(t, ex.Payload); got != want {
				t.Fatalf("body\n got %s\nwant %s", got, want)
			}
			if ev.TenantID != "tenant-demo" || ev.Type != ex.Type {
				t.Fatalf("tenant %q type %q", ev.TenantID, ev.Type)
			}
			if strings.Contains(string(ev.Body), "tenant_id") {
				t.Fatal("tenant_id leaked into the partner payload")
			}
		})
	}
}

func TestDecodeCoversEveryTypeAndPrizeType(t *testing.T) {
	types := map[Type]bool{}
	prizes := map[string]bool{}
	for _, ex := range Examples {
		types[ex.Type] = true
		if ex.PrizeType != "" {
			prizes[ex.PrizeType] = true
		}
	}
	for _, typ := range Types {
		if !types[typ] {
			t.Errorf("no example for %s", typ)
		}
	}
	for p := range prizeRequired {
		if !prizes[p] {
			t.Errorf("no example for prize type %s", p)
		}
	}
}

func TestDecodeDropsInternalAndUnknownFieldsAndNulls(t *testing.T) {
	raw := `{"tenant_id":"t1","internal_ref":"x-9","event_type":"PRIZE_PAYOUT_CREATED","campaign_id":"c",` +
		`"request_id":"r","player_id":"p","player_currency":"EUR","status":"TODO","prize_type":"mystery_box",` +
		`"amount":12345678901234567890.10,"bonus_id":null,"game_id":7,"extra":{"a":1}}`
	ev, err := Decode([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"campaign_id":"c","request_id":"r","player_id":"p","player_currency":"EUR","event_type":"PRIZE_PAYOUT_CREATED",` +
		`"status":"TODO","prize_type":"mystery_box","amount":12345678901234567890.10,"game_id":7}`
	if string(ev.Body) != want {
		t.Fatalf("got  %s\nwant %s", ev.Body, want)
	}
}

func TestDecodeOptInHasExactlyThreeFields(t *testing.T) {
	raw := `{"tenant_id":"t1","event_type":"PLAYER_OPTED_IN","player_id":"p","campaign_id":"c","request_id":"r","status":"X","amount":1}`
	ev, err := Decode([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"player_id":"p","campaign_id":"c","event_type":"PLAYER_OPTED_IN"}`; string(ev.Body) != want {
		t.Fatalf("got %s want %s", ev.Body, want)
	}
	if ev.RequestID != "" {
		t.Fatalf("opt-in event got a request id %q", ev.RequestID)
	}
}

func TestDecodeRejects(t *testing.T) {
	valid := map[string]any{
		"tenant_id": "t1", "campaign_id": "c", "request_id": "r", "player_id": "p", "player_currency": "USD",
		"event_type": "PRIZE_PAYOUT_SUCCEEDED", "status": "SUCCESS", "prize_type": "cash", "amount": 1.5,
	}
	with := func(k string, v any) string {
		m := map[string]any{}
		for kk, vv := range valid {
			m[kk] = vv
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	cases := []struct {
		name, raw, field string
	}{
		{"not json", `{"tenant_id":`, ""},
		{"array", `[1,2]`, ""},
		{"string", `"hello"`, ""},
		{"null", `null`, ""},
		{"empty", ``, ""},
		{"missing tenant", with("tenant_id", nil), "tenant_id"},
		{"blank tenant", with("tenant_id", " "), "tenant_id"},
		{"numeric tenant", with("tenant_id", 7), "tenant_id"},
		{"missing event type", with("event_type", nil), "event_type"},
		{"unknown event type", with("event_type", "PRIZE_PAYOUT_EXPLODED"), "event_type"},
		{"lower-case event type", with("event_type", "prize_payout_created"), "event_type"},
		{"missing request id", with("request_id", nil), "request_id"},
		{"missing currency", with("player_currency", nil), "player_currency"},
		{"missing status", with("status", nil), "status"},
		{"missing prize type", with("prize_type", nil), "prize_type"},
		{"empty player", with("player_id", ""), "player_id"},
		{"amount as string", with("amount", "1.5"), "amount"},
		{"bonus id as string", with("bonus_id", "456"), "bonus_id"},
		{"item as number", with("item", 3), "item"},
		{"cash without amount", with("amount", nil), "amount"},
		{"campaign as object", with("campaign_id", map[string]int{"a": 1}), "campaign_id"},
		{"opt-in without campaign", `{"tenant_id":"t","event_type":"PLAYER_OPTED_OUT","player_id":"p"}`, "campaign_id"},
		{"free spins without game", `{"tenant_id":"t","event_type":"PRIZE_PAYOUT_CREATED","campaign_id":"c","request_id":"r","player_id":"p","player_currency":"EUR","status":"TODO","prize_type":"free_spins","amount":5}`, "game_id"},
		{"catalog item without value", `{"tenant_id":"t","event_type":"PRIZE_PAYOUT_CREATED","campaign_id":"c","request_id":"r","player_id":"p","player_currency":"EUR","status":"TODO","prize_type":"catalog_item","item":"x"}`, "value"},
		{"deposit bonus without percentage", `{"tenant_id":"t","event_type":"PRIZE_PAYOUT_CREATED","campaign_id":"c","request_id":"r","player_id":"p","player_currency":"EUR","status":"TODO","prize_type":"deposit_bonus","bonus_id":1}`, "percentage_value"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte(tc.raw))
			var inv *InvalidError
			if !errors.As(err, &inv) {
				t.Fatalf("want *InvalidError, got %v", err)
			}
			if inv.Field != tc.field {
				t.Fatalf("field %q, want %q (%v)", inv.Field, tc.field, err)
			}
		})
	}
}

func TestParseTypes(t *testing.T) {
	got, err := ParseTypes([]string{"PLAYER_OPTED_IN", " PRIZE_PAYOUT_FAILED ", "PLAYER_OPTED_IN", ""})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != PlayerOptedIn || got[1] != PrizePayoutFailed {
		t.Fatalf("got %v", got)
	}
	if _, err := ParseTypes([]string{"PAYOUT"}); err == nil || !strings.Contains(err.Error(), "PAYOUT") {
		t.Fatalf("unknown type: %v", err)
	}
	if _, err := ParseTypes(nil); err == nil {
		t.Fatal("empty list accepted")
	}
}

// FuzzDecode: whatever bytes arrive, Decode never panics, and what it
// accepts renders to a JSON object without tenant_id whose event_type is one
// of the five.
func FuzzDecode(f *testing.F) {
	for _, ex := range Examples {
		f.Add([]byte(ex.Domain))
	}
	f.Add([]byte(`{"tenant_id":"t","event_type":"PLAYER_OPTED_IN","player_id":"p","campaign_id":"c"}`))
	f.Add([]byte(`{"amount":1e400}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		ev, err := Decode(raw)
		if err != nil {
			var inv *InvalidError
			if !errors.As(err, &inv) {
				t.Fatalf("error is not an *InvalidError: %v", err)
			}
			return
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(ev.Body, &m); err != nil {
			t.Fatalf("rendered body is not JSON: %v: %s", err, ev.Body)
		}
		if _, ok := m["tenant_id"]; ok {
			t.Fatalf("tenant_id leaked: %s", ev.Body)
		}
		if !ev.Type.Valid() || ev.TenantID == "" {
			t.Fatalf("accepted invalid event %+v", ev)
		}
		for k, v := range m {
			if jsonKind(v) == "null" {
				t.Fatalf("null %s reached the payload: %s", k, ev.Body)
			}
		}
	})
}

// A known key given twice is refused: a producer's validator that keeps the
// first copy and webhookd keeping the last would route the same bytes to
// different tenants. Escaped spellings of a key are the same key.
func TestDuplicateKnownKeysAreInvalid(t *testing.T) {
	for in, field := range map[string]string{
		`{"tenant_id":"acme","tenant_id":"evil","event_type":"PLAYER_OPTED_IN","player_id":"p","campaign_id":"c"}`:              "tenant_id",
		`{"tenant_id":"acme","event_type":"PLAYER_OPTED_IN","player_id":"p","campaign_id":"c","tenant\u005fid":"evil"}`:         "tenant_id",
		`{"tenant_id":"acme","event_type":"PLAYER_OPTED_IN","event_type":"PLAYER_OPTED_OUT","player_id":"p","campaign_id":"c"}`: "event_type",
		`{"tenant_id":"acme","event_type":"PLAYER_OPTED_IN","player_id":"p","player_id":null,"campaign_id":"c"}`:                "player_id",
	} {
		_, err := Decode([]byte(in))
		var ie *InvalidError
		if !errors.As(err, &ie) || ie.Field != field || !strings.Contains(ie.Reason, "twice") {
			t.Errorf("%s: got %v, want field %q reported twice", in, err, field)
		}
	}
	// Unknown fields never leave webhookd: their duplicates are harmless.
	if _, err := Decode([]byte(`{"tenant_id":"acme","x":1,"x":2,"event_type":"PLAYER_OPTED_IN","player_id":"p","campaign_id":"c"}`)); err != nil {
		t.Errorf("duplicate unknown field: %v", err)
	}
}

// encoding/json matches struct fields case-insensitively (Kelvin sign and
// long s included), so a Go producer's validator reads "TENANT_ID" as the
// tenant: a case variant of a known field is refused, alone or beside it.
func TestCaseVariantsOfKnownKeysAreInvalid(t *testing.T) {
	for in, field := range map[string]string{
		`{"tenant_id":"acme","TENANT_ID":"evil","event_type":"PLAYER_OPTED_IN","player_id":"p","campaign_id":"c"}`: "tenant_id",
		`{"Tenant_Id":"evil","event_type":"PLAYER_OPTED_IN","player_id":"p","campaign_id":"c"}`:                    "tenant_id",
		"{\"tenant_id\":\"acme\",\"event_type\":\"PRIZE_PAYOUT_CREATED\",\"reque\u017ft_id\":\"x\"}":               "request_id",
	} {
		_, err := Decode([]byte(in))
		var ie *InvalidError
		if !errors.As(err, &ie) || ie.Field != field || !strings.Contains(ie.Reason, "case") {
			t.Errorf("%s: got %v, want field %q refused as a case variant", in, err, field)
		}
	}
}
