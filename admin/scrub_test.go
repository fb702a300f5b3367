package admin

import (
	"strings"
	"testing"
)

func TestScrubSecretAlsoAtACut(t *testing.T) {
	const key = "sk_live_0123456789abcdef"
	for _, in := range []string{
		`{"echo":"Bearer ` + key + `"}`,
		`{"echo":"Bearer ` + key[:10],
		`{"echo":"Bearer ` + key[:4],
	} {
		out := scrubSecret(in, key)
		if strings.Contains(out, key[:4]) {
			t.Errorf("%q scrubbed to %q still shows the key's start", in, out)
		}
	}
	if out := scrubSecret(`{"ok":true}`, key); out != `{"ok":true}` {
		t.Errorf("an answer without the key changed: %q", out)
	}
}
