package event

import (
	"crypto/sha256"
	"encoding/base32"
	"strconv"
)

// WebhookID identifies the delivery of this event to one subscription. It is
// the same for every attempt, retry, redelivery after a crash and replay of
// that pair, so a partner can deduplicate on it. A payout is identified by
// its request id and event type; an opt-in/out has no request id, so its
// identity is its content plus where it was published in Kafka (the same
// player may opt in twice, and those are two events).
//
// The identity is hashed from a buffer on the stack: one allocation per
// id (the string), where hashing field by field took four. Records on the
// retry and dead-letter topics carry ids made by earlier versions, so the
// bytes hashed must never change (TestWebhookIDGolden).
func (e Event) WebhookID(subscriptionID string) string {
	var buf [256]byte
	b := appendField(buf[:0], subscriptionID)
	b = appendField(b, e.TenantID)
	b = appendField(b, string(e.Type))
	if e.Type.IsPayout() && e.RequestID != "" {
		b = appendField(b, e.RequestID)
	} else {
		b = appendField(b, e.PlayerID)
		b = appendField(b, e.CampaignID)
		b = appendField(b, e.Source.Topic)
		var num [20]byte
		b = appendField(b, string(strconv.AppendInt(num[:0], int64(e.Source.Partition), 10)))
		b = appendField(b, string(strconv.AppendInt(num[:0], e.Source.Offset, 10)))
	}
	sum := sha256.Sum256(b)
	var id [len(idPrefix) + 26]byte // 16 bytes in unpadded base32
	copy(id[:], idPrefix)
	idEncoding.Encode(id[len(idPrefix):], sum[:16])
	return string(id[:])
}

const idPrefix = "msg_"

// appendField appends s as <decimal length>:<s>, so that no two field
// lists hash the same bytes.
func appendField(b []byte, s string) []byte {
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, ':')
	return append(b, s...)
}

var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)
