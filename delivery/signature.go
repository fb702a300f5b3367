package delivery

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
)

// signature is the value of the Standard Webhooks webhook-signature header:
// for each key, "v1," and the base64 HMAC-SHA256 of "id.timestamp.body",
// space-separated. A partner accepts the delivery when any of them verifies,
// which is what lets a rotated secret and its successor overlap.
func signature(keys [][]byte, id string, timestamp int64, body []byte) string {
	ts := strconv.AppendInt(nil, timestamp, 10)
	out := make([]byte, 0, len(keys)*48)
	var sum [sha256.Size]byte
	for i, k := range keys {
		mac := hmac.New(sha256.New, k)
		mac.Write([]byte(id))
		mac.Write([]byte{'.'})
		mac.Write(ts)
		mac.Write([]byte{'.'})
		mac.Write(body)
		if i > 0 {
			out = append(out, ' ')
		}
		out = append(out, "v1,"...)
		out = base64.StdEncoding.AppendEncode(out, mac.Sum(sum[:0]))
	}
	return string(out)
}
