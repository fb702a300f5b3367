package delivery

import (
	"crypto/hmac"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// SignatureTolerance is how far a webhook-timestamp may be from the
// receiver's clock, as the Standard Webhooks specification recommends and
// the partner guide's verifiers use.
const SignatureTolerance = 5 * time.Minute

// Signature verification failures, as a partner's verifier reports them.
var (
	ErrSignatureMissing   = errors.New("webhook-id, webhook-timestamp or webhook-signature missing")
	ErrSignatureTimestamp = errors.New("webhook-timestamp is not within 5 minutes of now")
	ErrSignatureMismatch  = errors.New("no webhook-signature matches the body")
)

// VerifySignature is what a partner does with a signed delivery: it accepts
// h and body when one of the space-separated v1 signatures is the HMAC of
// "id.timestamp.body" under key, computed exactly as the sender signs, and
// the timestamp is within SignatureTolerance of now. Webhookd's own receiver
// uses it; the partner guide's snippets do the same in Node.js and Python.
func VerifySignature(key []byte, h http.Header, body []byte, now time.Time) error {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return ErrSignatureMissing
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return ErrSignatureTimestamp
	}
	if d := now.Sub(time.Unix(sec, 0)); d > SignatureTolerance || d < -SignatureTolerance {
		return ErrSignatureTimestamp
	}
	want := []byte(signature([][]byte{key}, id, sec, body))
	for _, got := range strings.Fields(sigs) {
		if hmac.Equal([]byte(got), want) {
			return nil
		}
	}
	return ErrSignatureMismatch
}
