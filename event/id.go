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
func (e Event) WebhookID(subscriptionID string) string {
	h := sha256.New()
	write := func(s string) {
		h.Write([]byte(strconv.Itoa(len(s))))
		h.Write([]byte{':'})
		h.Write([]byte(s))
	}
	write(subscriptionID)
	write(e.TenantID)
	write(string(e.Type))
	if e.Type.IsPayout() && e.RequestID != "" {
		write(e.RequestID)
	} else {
		write(e.PlayerID)
		write(e.CampaignID)
		write(e.Source.Topic)
		write(strconv.Itoa(e.Source.Partition))
		write(strconv.FormatInt(e.Source.Offset, 10))
	}
	sum := h.Sum(nil)
	return "msg_" + idEncoding.EncodeToString(sum[:16])
}

var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)
