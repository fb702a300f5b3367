package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"unicode/utf8"
)

// The top-level fields Decode reads; anything else in the message is
// skipped without being decoded.
var knownFields = func() map[string]int {
	m := map[string]int{"tenant_id": 0}
	for _, f := range payoutFields {
		if _, ok := m[f.name]; !ok {
			m[f.name] = len(m)
		}
	}
	return m
}()

// object holds the raw JSON tokens of the known top-level fields of one
// message; a null counts as absent.
type object struct {
	vals [16][]byte
}

func (o *object) get(name string) []byte {
	return o.vals[knownFields[name]]
}

// str returns a required string field.
func (o *object) str(name string) (string, error) {
	b, err := o.strBytes(name)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// strBytes is str without the copy into a string, for a value that is only
// looked at: the token's own bytes when it has no escapes.
func (o *object) strBytes(name string) ([]byte, error) {
	v := o.get(name)
	if v == nil {
		return nil, invalid(name, "required")
	}
	if jsonKind(v) != "string" {
		return nil, invalid(name, "must be a string, got %s", jsonKind(v))
	}
	if bytes.IndexByte(v, '\\') < 0 {
		return v[1 : len(v)-1], nil
	}
	s, err := unquote(v)
	if err != nil {
		return nil, invalid(name, "malformed string: %v", err)
	}
	return []byte(s), nil
}

// scan validates raw as one JSON object and collects the tokens of the
// known fields in a single pass, without building a map of the message.
// A known field that appears twice makes the message invalid: parsers
// disagree on which copy wins (encoding/json and Jackson take the last,
// others the first), so a producer's validator and webhookd could read
// different tenants from the same bytes.
func scan(raw []byte) (object, error) {
	var o object
	var seen uint32
	if !json.Valid(raw) {
		var v any
		err := json.Unmarshal(raw, &v) // slow path, for the message only
		if err == nil {
			err = errors.New("invalid JSON")
		}
		return o, invalid("", "not valid JSON: %v", err)
	}
	if !utf8.Valid(raw) {
		// JSON text is UTF-8; passing invalid bytes on would hand partners
		// a payload their parsers may reject or silently alter.
		return o, invalid("", "not valid UTF-8")
	}
	i := skipSpace(raw, 0)
	if raw[i] != '{' {
		return o, invalid("", "not a JSON object")
	}
	i = skipSpace(raw, i+1)
	for raw[i] != '}' {
		keyEnd := skipString(raw, i)
		key := raw[i:keyEnd]
		i = skipSpace(raw, keyEnd) + 1 // the colon
		i = skipSpace(raw, i)
		valEnd := skipValue(raw, i)
		name := key[1 : len(key)-1]
		if bytes.IndexByte(name, '\\') >= 0 {
			if s, err := unquote(key); err == nil {
				name = []byte(s)
			}
		}
		idx, ok := knownFields[string(name)]
		if !ok {
			// encoding/json (and so a Go producer's validator) matches
			// struct fields case-insensitively: "TENANT_ID" would be its
			// tenant_id, not an unknown field to us.
			if known := foldKnown(name); known != "" {
				return o, invalid(known, "appears as %q; keys that differ only in case are ambiguous (some parsers take them for the same field)", clip(string(name)))
			}
		}
		if ok {
			if seen&(1<<idx) != 0 {
				return o, invalid(string(name), duplicateReason)
			}
			seen |= 1 << idx
			if v := raw[i:valEnd]; v[0] == 'n' {
				o.vals[idx] = nil // null: absent
			} else {
				o.vals[idx] = v
			}
		}
		i = skipSpace(raw, valEnd)
		if raw[i] == ',' {
			i = skipSpace(raw, i+1)
		}
	}
	return o, nil
}

// foldKnown returns the known field name equals under Unicode case
// folding (as encoding/json compares, Kelvin sign and long s included), or
// "".
func foldKnown(name []byte) string {
	if len(name) < minKnownLen || len(name) > 3*maxKnownLen {
		return ""
	}
	for known := range knownFields {
		if bytes.EqualFold(name, []byte(known)) {
			return known
		}
	}
	return ""
}

// The shortest and longest known field names, to skip folding most keys.
var minKnownLen, maxKnownLen = func() (int, int) {
	lo, hi := 1<<30, 0
	for k := range knownFields {
		lo, hi = min(lo, len(k)), max(hi, len(k))
	}
	return lo, hi
}()

const duplicateReason = "appears twice; a message with a duplicated key is ambiguous (parsers disagree on which copy wins)"

// The skip functions walk input json.Valid has accepted, so they need not
// check for malformed tokens or the end of input.

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string token starting at b[i].
func skipString(b []byte, i int) int {
	for i++; b[i] != '"'; i++ {
		if b[i] == '\\' {
			i++
		}
	}
	return i + 1
}

// skipValue returns the index after the value starting at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; ; i++ {
			switch b[i] {
			case '"':
				i = skipString(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
	}
	for i < len(b) {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
		i++
	}
	return i
}

// unquote decodes a string token; the common case has no escapes.
func unquote(tok []byte) (string, error) {
	if len(tok) >= 2 && bytes.IndexByte(tok, '\\') < 0 {
		return string(tok[1 : len(tok)-1]), nil
	}
	var s string
	err := json.Unmarshal(tok, &s)
	return s, err
}
