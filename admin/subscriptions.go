package admin

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"github.com/unibo/webhookd/subscriptions"
)

// Every subscription leaves the API through Masked: secrets never do.

type subscriptionList struct {
	Subscriptions []subscriptions.Subscription `json:"subscriptions"`
}

func (h *Handler) listSubscriptions(w http.ResponseWriter, r *http.Request) error {
	q, err := queryParams(r, "tenant")
	if err != nil {
		return err
	}
	subs, err := h.store.List(r.Context(), q.Get("tenant"))
	if err != nil {
		return err
	}
	out := subscriptionList{Subscriptions: make([]subscriptions.Subscription, len(subs))}
	for i, s := range subs {
		out.Subscriptions[i] = s.Masked()
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (h *Handler) getSubscription(w http.ResponseWriter, r *http.Request) error {
	sub, err := h.store.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sub.Masked())
	return nil
}

// createSubscription is the CLI's add: the body is a subscription
// (enabled unless it says otherwise), the id is assigned when missing, and
// the store validates it with the CLI's rules.
func (h *Handler) createSubscription(w http.ResponseWriter, r *http.Request) error {
	b, err := readBody(w, r)
	if err != nil {
		return err
	}
	fields, err := objectFields(b)
	if err != nil {
		return err
	}
	// The rotation fields are the server's too: rotate-secret sets them.
	for _, k := range []string{"created_at", "updated_at", "previous_signing_secret", "previous_signing_secret_expires_at"} {
		if _, ok := fields[k]; ok {
			return badRequest(k, "field %q is set by the server", k)
		}
	}
	sub := subscriptions.Subscription{Enabled: true}
	if err := decodeStrict(b, &sub); err != nil {
		return err
	}
	created, err := h.store.Add(r.Context(), sub)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/subscriptions/"+url.PathEscape(created.ID))
	writeJSON(w, http.StatusCreated, created.Masked())
	return nil
}

// updateSubscription is the CLI's update: the body is a
// subscriptions.Patch, applied with the rules the CLI applies. "" clears the
// API key, [] the campaign filter; a signing_secret replaces the secret at
// once (ending a rotation) and "" stops signing.
func (h *Handler) updateSubscription(w http.ResponseWriter, r *http.Request) error {
	b, err := readBody(w, r)
	if err != nil {
		return err
	}
	fields, err := objectFields(b)
	if err != nil {
		return err
	}
	if len(fields) == 0 {
		return badRequest("", "nothing to update: give at least one field")
	}
	for _, k := range []string{"id", "created_at", "updated_at"} {
		if _, ok := fields[k]; ok {
			return badRequest(k, "field %q cannot be changed", k)
		}
	}
	for _, k := range []string{"previous_signing_secret", "previous_signing_secret_expires_at"} {
		if _, ok := fields[k]; ok {
			return badRequest(k, "unknown field %q: only a rotation sets the previous secret (POST /v1/subscriptions/{id}/rotate-secret)", k)
		}
	}
	for k, v := range fields {
		if string(v) == "null" {
			return badRequest(k, "field %q: null is not a value; \"\" clears a string, [] a list", k)
		}
	}
	// Unknown fields and wrong types are refused before touching Redis.
	var patch subscriptions.Patch
	if err := decodeStrict(b, &patch); err != nil {
		return err
	}
	sub, err := h.store.Update(r.Context(), r.PathValue("id"), patch.Change)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sub.Masked())
	return nil
}

func (h *Handler) enableSubscription(w http.ResponseWriter, r *http.Request) error {
	return h.setEnabled(w, r, true)
}

func (h *Handler) disableSubscription(w http.ResponseWriter, r *http.Request) error {
	return h.setEnabled(w, r, false)
}

func (h *Handler) setEnabled(w http.ResponseWriter, r *http.Request, enabled bool) error {
	sub, err := h.store.Update(r.Context(), r.PathValue("id"), func(s *subscriptions.Subscription) error {
		s.Enabled = enabled
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sub.Masked())
	return nil
}

func (h *Handler) deleteSubscription(w http.ResponseWriter, r *http.Request) error {
	if err := h.store.Delete(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// objectFields reads the top-level fields of a JSON object.
func objectFields(b []byte) (map[string]json.RawMessage, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, badRequest("", "request body: a JSON object is required")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return nil, jsonError(err)
	}
	if fields == nil {
		return nil, badRequest("", "request body: a JSON object is required")
	}
	return fields, nil
}

type rotateRequest struct {
	// Grace is how long the previous secret keeps signing too, as a Go
	// duration ("24h", "0s"); 24h when absent.
	Grace string `json:"grace"`
	// SigningSecret is the new secret; a random one when absent.
	SigningSecret string `json:"signing_secret"`
}

type rotateResponse struct {
	Subscription subscriptions.Subscription `json:"subscription"`
	// SigningSecret is the new secret, in clear: this answer is the only
	// place the API shows it, for the partner's verifier.
	SigningSecret string `json:"signing_secret"`
}

// rotateSecret is `webhookd subscriptions rotate-secret`: a new signing
// secret, the previous one still signing for the grace period.
func (h *Handler) rotateSecret(w http.ResponseWriter, r *http.Request) error {
	var req rotateRequest
	fields, err := readJSON(w, r, &req, true)
	if err != nil {
		return err
	}
	if err := refuseEmpty(fields, "grace", "signing_secret"); err != nil {
		return err
	}
	grace := 24 * time.Hour
	if req.Grace != "" {
		d, err := time.ParseDuration(req.Grace)
		if err != nil || d < 0 {
			return badRequest("grace", "must be a non-negative duration such as 24h or 0s, got %q", req.Grace)
		}
		grace = d
	}
	secret := req.SigningSecret
	if secret == "" {
		secret = subscriptions.NewSigningSecret()
	}
	sub, err := h.store.Update(r.Context(), r.PathValue("id"), func(s *subscriptions.Subscription) error {
		s.RotateSigningSecret(secret, time.Now(), grace)
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rotateResponse{Subscription: sub.Masked(), SigningSecret: sub.SigningSecret})
	return nil
}
