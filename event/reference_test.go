package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// decodeReference is the first Decode, built on encoding/json's map
// decoding: slower, obviously right. The fuzzer holds Decode to it.
func decodeReference(raw []byte) (Event, error) {
	if json.Valid(raw) && !utf8.Valid(raw) {
		return Event{}, invalid("", "not valid UTF-8")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			return Event{}, invalid("", "not valid JSON: %v", err)
		case errors.As(err, &typ):
			return Event{}, invalid("", "not a JSON object")
		default:
			return Event{}, invalid("", "not valid JSON: %v", err)
		}
	}
	if obj == nil {
		return Event{}, invalid("", "not a JSON object")
	}
	if name := refDuplicateKnownKey(raw); name != "" {
		return Event{}, invalid(name, duplicateReason)
	}

	var ev Event
	tenant, err := refStringField(obj, "tenant_id")
	if err != nil {
		return Event{}, err
	}
	if strings.TrimSpace(tenant) == "" {
		return Event{}, invalid("tenant_id", "must not be empty")
	}
	ev.TenantID = tenant

	et, err := refStringField(obj, "event_type")
	if err != nil {
		return Event{}, err
	}
	ev.Type = Type(et)
	if !ev.Type.Valid() {
		return Event{}, invalid("event_type", "unknown event type %q", et)
	}

	fields := participationFields
	required := len(participationFields)
	if ev.Type.IsPayout() {
		fields, required = payoutFields, payoutRequired
	}

	var buf bytes.Buffer
	buf.Grow(len(raw))
	buf.WriteByte('{')
	wrote := false
	for i, f := range fields {
		v, present := obj[f.name]
		if present && refIsNull(v) {
			present = false // no nulls reach a partner
		}
		if !present {
			if i < required {
				return Event{}, invalid(f.name, "required for %s", ev.Type)
			}
			continue
		}
		if err := checkKind(f, v); err != nil {
			return Event{}, err
		}
		if f.kind == kindString && i < required && refIsEmptyString(v) {
			return Event{}, invalid(f.name, "must not be empty")
		}
		if wrote {
			buf.WriteByte(',')
		}
		buf.WriteByte('"')
		buf.WriteString(f.name)
		buf.WriteString(`":`)
		if err := json.Compact(&buf, v); err != nil {
			return Event{}, invalid(f.name, "malformed value: %v", err)
		}
		wrote = true
	}
	buf.WriteByte('}')

	if ev.Type.IsPayout() {
		prize, _ := refStringField(obj, "prize_type")
		for _, name := range prizeRequired[prize] {
			if v, ok := obj[name]; !ok || refIsNull(v) {
				return Event{}, invalid(name, "required for prize_type %q", prize)
			}
		}
		ev.RequestID, _ = refStringField(obj, "request_id")
	}
	ev.CampaignID, _ = refStringField(obj, "campaign_id")
	ev.PlayerID, _ = refStringField(obj, "player_id")
	ev.Body = buf.Bytes()
	return ev, nil
}

func refStringField(obj map[string]json.RawMessage, name string) (string, error) {
	v, ok := obj[name]
	if !ok || refIsNull(v) {
		return "", invalid(name, "required")
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", invalid(name, "must be a string, got %s", jsonKind(v))
	}
	return s, nil
}

func refIsNull(v json.RawMessage) bool { return jsonKind(v) == "null" }

func refIsEmptyString(v json.RawMessage) bool {
	var s string
	return json.Unmarshal(v, &s) == nil && strings.TrimSpace(s) == ""
}

// FuzzDecodeMatchesReference: the single-pass scanner accepts exactly what
// the encoding/json-based reference accepts, rejects for the same field, and
// renders the same bytes.
func FuzzDecodeMatchesReference(f *testing.F) {
	for _, ex := range Examples {
		f.Add([]byte(ex.Domain))
	}
	f.Add([]byte(`{"tenant_id":"t\u0041","event_type":"PLAYER_OPTED_IN","player_id":"p","campaign_id":"c","x":[1,{"a":"}"}]}`))
	f.Add([]byte(`{"tenant_id":"t","tenant_id":null,"event_type":"PLAYER_OPTED_IN","player_id":"p","campaign_id":"c"}`))
	f.Add([]byte(` { "tenant_id" : "t" , "event_type":"PLAYER_OPTED_OUT","player_id":"p","campaign_id":"c\"q" } `))
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, gotErr := Decode(raw)
		want, wantErr := decodeReference(raw)
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("Decode err %v, reference err %v", gotErr, wantErr)
		}
		if gotErr != nil {
			var g, w *InvalidError
			if !errors.As(gotErr, &g) || !errors.As(wantErr, &w) || g.Field != w.Field {
				t.Fatalf("Decode err %v, reference err %v", gotErr, wantErr)
			}
			return
		}
		if !bytes.Equal(got.Body, want.Body) || got.TenantID != want.TenantID || got.Type != want.Type ||
			got.CampaignID != want.CampaignID || got.RequestID != want.RequestID || got.PlayerID != want.PlayerID {
			t.Fatalf("Decode %+v\nreference %+v", got, want)
		}
	})
}

// refDuplicateKnownKey walks the top-level keys with encoding/json's
// tokenizer and returns the first known field that appears a second time,
// or as a case variant.
func refDuplicateKnownKey(raw []byte) string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil { // {
		return ""
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		key, _ := tok.(string)
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return ""
		}
		if _, known := knownFields[key]; !known {
			for k := range knownFields {
				if strings.EqualFold(key, k) {
					return k // a case variant of a known field
				}
			}
			continue
		}
		if seen[key] {
			return key
		}
		seen[key] = true
	}
	return ""
}
