package subscriptions

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/unibo/webhookd/event"
)

const sampleFile = `# partners
subscriptions:
  - id: partner-a
    tenant_id: acme
    url: https://hooks.acme.example/prizes
    event_types: [PRIZE_PAYOUT_SUCCEEDED, PRIZE_PAYOUT_FAILED]
    api_key: s3cret-s3cret
    campaign_ids: [summer]
  - tenant_id: globex
    url: http://10.0.0.7:8080/hook
    event_types:
      - PLAYER_OPTED_IN
    enabled: false
`

func TestParseFile(t *testing.T) {
	got, err := ParseFile(strings.NewReader(sampleFile))
	if err != nil {
		t.Fatalf("ParseFile: %v", err)
	}
	want := []Subscription{
		{
			ID: "partner-a", TenantID: "acme", URL: "https://hooks.acme.example/prizes",
			EventTypes: []event.Type{event.PrizePayoutSucceeded, event.PrizePayoutFailed},
			APIKey:     "s3cret-s3cret", CampaignIDs: []string{"summer"}, Enabled: true,
		},
		{
			TenantID: "globex", URL: "http://10.0.0.7:8080/hook",
			EventTypes: []event.Type{event.PlayerOptedIn}, Enabled: false,
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseFile =\n%+v\nwant\n%+v", got, want)
	}
}

func TestParseFileErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		want []string // substrings of the error
	}{
		{"empty", "", []string{"empty"}},
		{"comment only", "# nothing\n", []string{"empty"}},
		{"no subscriptions key", "other: 1\n", []string{`line 1: unknown key "other"`}},
		{"null list", "subscriptions:\n", []string{"no subscriptions: list"}},
		{"unknown key", "subscriptions:\n  - tenant_id: a\n    url: https://a.example/\n    event_type: [PLAYER_OPTED_IN]\n",
			[]string{`line 4: unknown key "event_type"; did you mean event_types?`}},
		{"unknown top-level key", "subscription:\n  - tenant_id: a\n", []string{`line 1: unknown key "subscription"; did you mean subscriptions?`}},
		{"unknown key like none", "subscriptions:\n  - tenant_id: a\n    colour: blue\n", []string{`line 3: unknown key "colour"`}},
		{"not a list", "subscriptions: {tenant_id: a}\n", []string{"cannot unmarshal"}},
		{"bad enabled", "subscriptions:\n  - enabled: maybe\n", []string{"line 2"}},
		{"two documents", "subscriptions: []\n---\nsubscriptions: []\n", []string{"one YAML document"}},
		{"invalid url", "subscriptions:\n  - tenant_id: a\n    url: https://a.example/\n    event_types: [PLAYER_OPTED_IN]\n" +
			"  - id: b\n    tenant_id: a\n    url: hooks.example/x\n    event_types: [PLAYER_OPTED_IN]\n",
			[]string{`subscriptions[1] (id "b", line 5): field "url"`}},
		{"unknown event type", "subscriptions:\n  - tenant_id: a\n    url: https://a.example/\n    event_types: [PRIZE_WON]\n",
			[]string{`subscriptions[0] (line 2): field "event_types"`, "PRIZE_WON"}},
		{"missing tenant", "subscriptions:\n  - url: https://a.example/\n    event_types: [PLAYER_OPTED_IN]\n",
			[]string{`field "tenant_id"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseFile(strings.NewReader(tt.file))
			if err == nil {
				t.Fatal("ParseFile succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// A key like none of the file's gets no suggestion.
func TestParseFileSuggestsOnlyANearKey(t *testing.T) {
	_, err := ParseFile(strings.NewReader("subscriptions:\n  - tenant_id: a\n    colour: blue\n"))
	if err == nil || err.Error() != `parse subscriptions file: line 3: unknown key "colour"` {
		t.Errorf("error %v", err)
	}
}

func TestParseFileValidationErrorIsTyped(t *testing.T) {
	_, err := ParseFile(strings.NewReader("subscriptions:\n  - tenant_id: a\n    url: ftp://a/\n    event_types: [PLAYER_OPTED_IN]\n"))
	var ee *EntryError
	var fe *FieldError
	if !errors.As(err, &ee) || ee.Line != 2 || !errors.As(err, &fe) || fe.Field != "url" {
		t.Errorf("ParseFile = %v, want an *EntryError at line 2 wrapping a url *FieldError", err)
	}
}

func TestParseFileEmptyListIsAllowed(t *testing.T) {
	got, err := ParseFile(strings.NewReader("subscriptions: []\n"))
	if err != nil || len(got) != 0 {
		t.Errorf("ParseFile = %v, %v; want an empty table", got, err)
	}
}

func TestWriteFileRoundTrip(t *testing.T) {
	in, err := ParseFile(strings.NewReader(sampleFile))
	if err != nil {
		t.Fatal(err)
	}
	in[1].ID = derivedID(in[1].TenantID, in[1].URL)
	var buf bytes.Buffer
	if err := WriteFile(&buf, in); err != nil {
		t.Fatal(err)
	}
	out, err := ParseFile(&buf)
	if err != nil {
		t.Fatalf("ParseFile(WriteFile()) = %v; file:\n%s", err, buf.String())
	}
	if !reflect.DeepEqual(out, in) {
		t.Errorf("round trip =\n%+v\nwant\n%+v", out, in)
	}
}

// A backup carries every secret: the signing secret and, during a rotation,
// the previous one with its expiry. Written masked, it is refused by name.
func TestWriteFileCarriesSigningSecrets(t *testing.T) {
	sub := validSub()
	sub.SigningSecret = NewSigningSecret()
	sub.RotateSigningSecret(NewSigningSecret(), time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC), 24*time.Hour)
	plain := validSub()
	plain.ID, plain.APIKey = "sub_b", ""
	plain.SigningSecret = NewSigningSecret()
	in := []Subscription{sub, plain}

	var buf bytes.Buffer
	if err := WriteFile(&buf, in); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"signing_secret: " + sub.SigningSecret, "previous_signing_secret: " + sub.PreviousSigningSecret,
		"previous_signing_secret_expires_at: 2025-06-02T10:00:00Z", "signing_secret: " + plain.SigningSecret} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("backup lacks %q:\n%s", want, buf.String())
		}
	}
	out, err := ParseFile(&buf)
	if err != nil {
		t.Fatalf("ParseFile(WriteFile()) = %v", err)
	}
	if !reflect.DeepEqual(out, in) {
		t.Errorf("round trip =\n%+v\nwant\n%+v", out, in)
	}

	buf.Reset()
	if err := WriteFile(&buf, []Subscription{plain.Masked()}); err != nil {
		t.Fatal(err)
	}
	_, err = ParseFile(&buf)
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "signing_secret" || !strings.Contains(err.Error(), "--reveal-secrets") {
		t.Errorf("ParseFile of a masked export = %v, want a signing_secret error pointing to --reveal-secrets", err)
	}
}

func FuzzParseFile(f *testing.F) {
	f.Add(sampleFile)
	f.Add("subscriptions: []\n")
	f.Add("subscriptions:\n  - {tenant_id: a, url: 'https://a/', event_types: [PLAYER_OPTED_OUT], enabled: false}\n")
	f.Add("subscriptions:\n  - ~\n")
	f.Fuzz(func(t *testing.T, file string) {
		subs, err := ParseFile(strings.NewReader(file))
		if err != nil {
			return
		}
		for i, s := range subs {
			if err := s.Validate(); err != nil {
				t.Fatalf("ParseFile accepted entry %d that does not validate: %v", i, err)
			}
		}
		var buf bytes.Buffer
		if err := WriteFile(&buf, subs); err != nil {
			t.Fatalf("WriteFile: %v", err)
		}
		again, err := ParseFile(&buf)
		if err != nil {
			t.Fatalf("ParseFile(WriteFile()) = %v; file:\n%s", err, buf.String())
		}
		if len(again) != len(subs) {
			t.Fatalf("round trip: %d entries, want %d", len(again), len(subs))
		}
		for i := range subs {
			if !sameContent(again[i], subs[i]) {
				t.Fatalf("round trip entry %d = %+v, want %+v", i, again[i], subs[i])
			}
		}
	})
}
