// Package event is the shared vocabulary of webhookd: the domain event that
// payout services publish to Kafka, its validation, and its rendering into the
// exact payload the Webhook Integration Guide promises partners.
package event

import (
	"fmt"
	"strings"
	"time"
)

// Type is one of the five event types of the Webhook Integration Guide.
type Type string

// The event types a partner can subscribe to.
const (
	PrizePayoutCreated   Type = "PRIZE_PAYOUT_CREATED"
	PrizePayoutSucceeded Type = "PRIZE_PAYOUT_SUCCEEDED"
	PrizePayoutFailed    Type = "PRIZE_PAYOUT_FAILED"
	PlayerOptedIn        Type = "PLAYER_OPTED_IN"
	PlayerOptedOut       Type = "PLAYER_OPTED_OUT"
)

// Types lists every supported event type in the guide's order.
var Types = [...]Type{PrizePayoutCreated, PrizePayoutSucceeded, PrizePayoutFailed, PlayerOptedIn, PlayerOptedOut}

// Valid reports whether t is one of the five supported event types.
func (t Type) Valid() bool {
	switch t {
	case PrizePayoutCreated, PrizePayoutSucceeded, PrizePayoutFailed, PlayerOptedIn, PlayerOptedOut:
		return true
	}
	return false
}

// IsPayout reports whether t is one of the three prize payout event types.
func (t Type) IsPayout() bool {
	return t == PrizePayoutCreated || t == PrizePayoutSucceeded || t == PrizePayoutFailed
}

// ParseType parses an event type name exactly as the guide spells it.
func ParseType(s string) (Type, error) {
	t := Type(s)
	if !t.Valid() {
		return "", fmt.Errorf("unknown event type %q (want one of %s)", s, typeNames())
	}
	return t, nil
}

// ParseTypes parses a list of event type names (blanks ignored, duplicates
// dropped). It rejects an unknown name and an empty list.
func ParseTypes(names []string) ([]Type, error) {
	out := make([]Type, 0, len(names))
	seen := make(map[Type]bool, len(names))
	for _, n := range names {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		t, err := ParseType(n)
		if err != nil {
			return nil, err
		}
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("at least one event type is required (one of %s)", typeNames())
	}
	return out, nil
}

func typeNames() string {
	names := make([]string, len(Types))
	for i, t := range Types {
		names[i] = string(t)
	}
	return strings.Join(names, ", ")
}

// Event is a validated domain event, ready to be matched and delivered.
type Event struct {
	// TenantID is the partner/operator the event belongs to. It selects the
	// subscriptions and never leaves webhookd.
	TenantID   string
	Type       Type
	CampaignID string
	// RequestID is the payout's request id; empty for opt-in/out events.
	RequestID string
	PlayerID  string
	// Source says where the event was read; it only feeds logs.
	Source Source
	// Body is the partner payload, rendered once: exactly the guide's fields,
	// in the guide's order, numbers as the producer wrote them.
	Body []byte
}

// Source locates an event in Kafka.
type Source struct {
	Topic     string
	Partition int
	Offset    int64
	Key       string
	Time      time.Time
}
