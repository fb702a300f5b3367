package event

import (
	"bytes"
	"fmt"
	"strings"
)

// InvalidError says why a Kafka message is not a valid domain event. Field is
// the offending field, empty when the message as a whole is at fault.
type InvalidError struct {
	Field  string
	Reason string
}

func (e *InvalidError) Error() string {
	if e.Field == "" {
		return "invalid event: " + e.Reason
	}
	return fmt.Sprintf("invalid event: field %q: %s", e.Field, e.Reason)
}

func invalid(field, format string, args ...any) error {
	return &InvalidError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// kind is the JSON type a field must have.
type kind int

const (
	kindString kind = iota
	kindNumber
)

func (k kind) String() string {
	if k == kindNumber {
		return "number"
	}
	return "string"
}

type field struct {
	name string
	kind kind
}

// payoutFields are the guide's payout payload fields, in the guide's order.
// The first seven are required on every payout event; the rest are the
// prize-type fields, passed on when the event carries them.
var payoutFields = []field{
	{"campaign_id", kindString},
	{"request_id", kindString},
	{"player_id", kindString},
	{"player_currency", kindString},
	{"event_type", kindString},
	{"status", kindString},
	{"prize_type", kindString},
	{"amount", kindNumber},
	{"game_id", kindNumber},
	{"percentage_value", kindNumber},
	{"item", kindString},
	{"value", kindNumber},
	{"bonus_id", kindNumber}, // last, as in every example of the guide
}

const payoutRequired = 7

// participationFields are the guide's opt-in/out payload fields, all required.
var participationFields = []field{
	{"player_id", kindString},
	{"campaign_id", kindString},
	{"event_type", kindString},
}

// prizeRequired lists, for the prize types the guide documents, the
// prize-type fields an event of that type must carry. Other prize types
// ("etc." in the guide) pass whichever prize-type fields they carry.
var prizeRequired = map[string][]string{
	"cash":          {"amount"},
	"free_spins":    {"amount", "game_id"},
	"bonus_amount":  {"amount"},
	"deposit_bonus": {"percentage_value"},
	"catalog_item":  {"item", "value"},
}

// Decode validates a Kafka message value and renders the partner payload.
// Every error it returns is an *InvalidError.
func Decode(raw []byte) (Event, error) {
	obj, err := scan(raw)
	if err != nil {
		return Event{}, err
	}

	var ev Event
	tenant, err := obj.str("tenant_id")
	if err != nil {
		return Event{}, err
	}
	if strings.TrimSpace(tenant) == "" {
		return Event{}, invalid("tenant_id", "must not be empty")
	}
	ev.TenantID = tenant

	et, err := obj.strBytes("event_type")
	if err != nil {
		return Event{}, err
	}
	if ev.Type = typeOf(et); ev.Type == "" {
		return Event{}, invalid("event_type", "unknown event type %q", clip(string(et)))
	}

	fields := participationFields
	required := len(participationFields)
	if ev.Type.IsPayout() {
		fields, required = payoutFields, payoutRequired
	}

	body := make([]byte, 0, len(raw))
	body = append(body, '{')
	for i, f := range fields {
		v := obj.get(f.name)
		if v == nil {
			if i < required {
				return Event{}, invalid(f.name, "required for %s", ev.Type)
			}
			continue
		}
		if err := checkKind(f, v); err != nil {
			return Event{}, err
		}
		if f.kind == kindString && i < required && isEmptyString(v) {
			return Event{}, invalid(f.name, "must not be empty")
		}
		if len(body) > 1 {
			body = append(body, ',')
		}
		body = append(body, '"')
		body = append(body, f.name...)
		body = append(body, '"', ':')
		body = append(body, v...) // a string or number token: already compact
	}
	body = append(body, '}')

	if ev.Type.IsPayout() {
		prize, _ := obj.strBytes("prize_type")
		for _, name := range prizeRequired[string(prize)] {
			if obj.get(name) == nil {
				return Event{}, invalid(name, "required for prize_type %q", clip(string(prize)))
			}
		}
		ev.RequestID, _ = obj.str("request_id")
	}
	ev.CampaignID, _ = obj.str("campaign_id")
	ev.PlayerID, _ = obj.str("player_id")
	ev.Body = body
	return ev, nil
}

func checkKind(f field, v []byte) error {
	got := jsonKind(v)
	if got != f.kind.String() {
		return invalid(f.name, "must be a %s, got %s", f.kind, got)
	}
	return nil
}

// jsonKind names the JSON type of a raw value by its first byte; the value
// has already been validated by encoding/json.
func jsonKind(v []byte) string {
	v = bytes.TrimLeft(v, " \t\r\n")
	if len(v) == 0 {
		return "nothing"
	}
	switch c := v[0]; {
	case c == '"':
		return "string"
	case c == '-' || (c >= '0' && c <= '9'):
		return "number"
	case c == 't' || c == 'f':
		return "boolean"
	case c == 'n':
		return "null"
	case c == '{':
		return "object"
	case c == '[':
		return "array"
	}
	return "unknown"
}

// typeOf returns the event type named b, "" when there is none; the
// constant itself, so an event costs no allocation for its type.
func typeOf(b []byte) Type {
	for _, t := range Types {
		if string(t) == string(b) {
			return t
		}
	}
	return ""
}

func isEmptyString(v []byte) bool {
	if len(v) >= 2 && bytes.IndexByte(v, '\\') < 0 {
		return len(bytes.TrimSpace(v[1:len(v)-1])) == 0 // no copy in the common case
	}
	s, err := unquote(v)
	return err == nil && strings.TrimSpace(s) == ""
}

// clip shortens a value quoted in an error: the input is hostile, and a
// 300 KB event type must not become a 300 KB log line.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
