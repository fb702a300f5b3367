package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/unibo/webhookd/subscriptions"
)

// MaxBodyBytes bounds every request body.
const MaxBodyBytes = 1 << 20

// errorBody is every error answer: what is wrong and, for invalid input,
// which field.
type errorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

// apiError is an error that knows its HTTP status.
type apiError struct {
	status int
	field  string
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(field, format string, args ...any) error {
	return &apiError{status: http.StatusBadRequest, field: field, msg: fmt.Sprintf(format, args...)}
}

// writeError maps err to a status: invalid input 400 (naming the field),
// unknown subscription 404, conflicts 409, anything else 500.
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	body := errorBody{Error: err.Error()}
	var status int
	var ae *apiError
	var fe *subscriptions.FieldError
	switch {
	case errors.As(err, &ae):
		status, body.Field = ae.status, ae.field
	case errors.As(err, &fe):
		status, body.Field = http.StatusBadRequest, fe.Field
	case errors.Is(err, subscriptions.ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, subscriptions.ErrExists):
		status, body.Field = http.StatusConflict, "id"
	case errors.Is(err, subscriptions.ErrTenantLimit):
		status, body.Field = http.StatusConflict, "tenant_id"
	case errors.Is(err, redis.TxFailedErr):
		status = http.StatusConflict // other writers kept winning the optimistic transaction
	case r.Context().Err() != nil && errors.Is(err, context.Canceled):
		status = http.StatusServiceUnavailable // the client left, or the server is stopping
	default:
		status = http.StatusInternalServerError
		h.log.Error("admin request failed", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Error(err))
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	// Compact: a dead letter's body stays byte for byte what was sent.
	_ = json.NewEncoder(w).Encode(v)
}

// readBody reads a body of at most MaxBodyBytes.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, &apiError{status: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf("request body larger than %d bytes", MaxBodyBytes)}
	}
	if err != nil {
		return nil, badRequest("", "read request body: %v", err)
	}
	return b, nil
}

// decodeStrict decodes one JSON object into v, rejecting anything but an
// object, unknown fields, null values and trailing data.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badRequest("", "request body: unexpected data after the JSON object")
	}
	// Decoding null is no error: it leaves v (or the field, or a list's
	// element) as it was, which would make null mean "leave it as it is"
	// where the document says "a string". No request has a null anywhere.
	fields, err := objectFields(b)
	if err != nil {
		return err
	}
	for k, raw := range fields {
		switch {
		case string(raw) == "null":
			return badRequest(k, "field %q: null is not a value; leave the field out instead", k)
		case hasNull(raw):
			return badRequest(k, "field %q holds a null: null is not a value", k)
		}
	}
	return nil
}

// hasNull reports whether the JSON value b (valid JSON) is or holds a null.
func hasNull(b []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(b))
	for {
		tok, err := dec.Token()
		if err != nil {
			return false // io.EOF: b was read to its end
		}
		if tok == nil {
			return true
		}
	}
}

// readJSON reads the body into v and returns its top-level fields; an
// empty body leaves v as it is when optional is set.
func readJSON(w http.ResponseWriter, r *http.Request, v any, optional bool) (map[string]json.RawMessage, error) {
	b, err := readBody(w, r)
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		if optional {
			return nil, nil
		}
		return nil, badRequest("", "request body: a JSON object is required")
	}
	if err := decodeStrict(b, v); err != nil {
		return nil, err
	}
	return objectFields(b)
}

// refuseEmpty refuses names given as "": for these fields an absent field
// has a meaning (a default, no filter) and "" is not a second way to say it.
func refuseEmpty(fields map[string]json.RawMessage, names ...string) error {
	for _, k := range names {
		if string(fields[k]) == `""` {
			return badRequest(k, "field %q: \"\" is not a value; leave the field out instead", k)
		}
	}
	return nil
}

func jsonError(err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return badRequest(typeErr.Field, "field %q: expected %s, got JSON %s", typeErr.Field, typeErr.Type, typeErr.Value)
	case errors.As(err, &typeErr):
		return badRequest("", "request body: expected a JSON object, got JSON %s", typeErr.Value)
	case errors.As(err, &syntaxErr):
		return badRequest("", "request body: invalid JSON at byte %d: %v", syntaxErr.Offset, err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("", "request body: truncated JSON")
	}
	// encoding/json has no type for it: `json: unknown field "x"`.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		field := strings.Trim(name, `"`)
		return badRequest(field, "unknown field %q", field)
	}
	return badRequest("", "request body: %v", err)
}

// queryParams returns the query, refusing parameters not in allowed (a
// typo must not silently widen a listing), repeated ones and empty ones.
func queryParams(r *http.Request, allowed ...string) (url.Values, error) {
	q := r.URL.Query()
	for k, vs := range q {
		if !slices.Contains(allowed, k) {
			return nil, badRequest(k, "unknown query parameter %q (known: %s)", k, strings.Join(allowed, ", "))
		}
		if len(vs) > 1 {
			return nil, badRequest(k, "query parameter %q given %d times", k, len(vs))
		}
		if vs[0] == "" {
			return nil, badRequest(k, "query parameter %q is empty; leave it out instead", k)
		}
	}
	return q, nil
}
