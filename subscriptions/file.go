package subscriptions

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/unibo/webhookd/config"
	"github.com/unibo/webhookd/event"
)

// maxFileSize bounds what ParseFile reads.
const maxFileSize = 16 << 20

// fileDoc is the apply file:
//
//	subscriptions:
//	  - id: sub_0123456789abcdefghij   # optional: derived from tenant_id and url
//	    tenant_id: acme
//	    url: https://hooks.acme.example/prizes
//	    event_types: [PRIZE_PAYOUT_SUCCEEDED, PRIZE_PAYOUT_FAILED]
//	    api_key: s3cret                  # optional
//	    campaign_ids: [summer-2025]      # optional: every campaign when omitted
//	    enabled: true                    # optional: true when omitted
//	    max_attempts: 5                  # optional: delivery.retry.max_attempts when omitted
//	    signing_secret: whsec_…          # optional: deliveries are signed when set
//	    previous_signing_secret: whsec_… # optional: during a rotation, also signs
//	    previous_signing_secret_expires_at: 2025-06-02T10:00:00Z # until then
//
// It carries every secret of a subscription, so that a file written by
// WriteFile with the secrets in clear (`list -o yaml --reveal-secrets`) is a
// complete backup. A masked secret (starting with "****", what `list -o yaml`
// writes without --reveal-secrets) is refused by Validate: applying a masked
// export would otherwise replace every secret with its mask.
type fileDoc struct {
	// A pointer tells a missing key (an error) from an empty list (delete
	// every subscription).
	Subscriptions *[]fileEntry `yaml:"subscriptions"`
}

type fileEntry struct {
	ID          string       `yaml:"id,omitempty"`
	TenantID    string       `yaml:"tenant_id"`
	URL         string       `yaml:"url"`
	EventTypes  []event.Type `yaml:"event_types,flow"`
	APIKey      string       `yaml:"api_key,omitempty"`
	CampaignIDs []string     `yaml:"campaign_ids,flow,omitempty"`
	Enabled     *bool        `yaml:"enabled,omitempty"`
	MaxAttempts int          `yaml:"max_attempts,omitempty"`

	SigningSecret           string    `yaml:"signing_secret,omitempty"`
	PreviousSigningSecret   string    `yaml:"previous_signing_secret,omitempty"`
	PreviousSecretExpiresAt time.Time `yaml:"previous_signing_secret_expires_at,omitempty"`
}

// File is an apply file as read: its subscriptions, in order, and the line
// each starts on.
type File struct {
	Subscriptions []Subscription
	Lines         []int
}

// Locate gives an *EntryError in err about one of the file's entries (from
// the store's checks on applying it, such as the egress policy) the entry's
// line, as ParseFile's own errors have. It returns err.
func (f File) Locate(err error) error {
	var ee *EntryError
	if errors.As(err, &ee) && ee.Line == 0 && ee.Index >= 0 && ee.Index < len(f.Lines) {
		ee.Line = f.Lines[ee.Index]
	}
	return err
}

// ParseFile reads an apply file and validates every entry: ReadFile
// without the lines.
func ParseFile(r io.Reader) ([]Subscription, error) {
	f, err := ReadFile(r)
	return f.Subscriptions, err
}

// ReadFile reads an apply file and validates every entry. Unknown keys are
// errors; an omitted enabled means true. The file must have a subscriptions
// key: an empty file would otherwise delete the whole table. Validation errors
// are *EntryError values carrying the entry's line.
func ReadFile(r io.Reader) (File, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxFileSize+1))
	if err != nil {
		return File{}, fmt.Errorf("read subscriptions file: %w", err)
	}
	if len(data) > maxFileSize {
		return File{}, fmt.Errorf("subscriptions file is larger than %d bytes", maxFileSize)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var doc fileDoc
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return File{}, errors.New("subscriptions file is empty: want a top-level subscriptions: list (subscriptions: [] deletes every subscription)")
		}
		return File{}, fmt.Errorf("parse subscriptions file: %w", yamlError(err))
	}
	if doc.Subscriptions == nil {
		return File{}, errors.New("subscriptions file has no subscriptions: list (subscriptions: [] deletes every subscription)")
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return File{}, errors.New("subscriptions file must hold exactly one YAML document")
	}
	lines := entryLines(data)
	entries := *doc.Subscriptions
	subs := make([]Subscription, len(entries))
	for i, e := range entries {
		s := Subscription{
			ID:          e.ID,
			TenantID:    e.TenantID,
			URL:         e.URL,
			EventTypes:  e.EventTypes,
			APIKey:      e.APIKey,
			CampaignIDs: e.CampaignIDs,
			Enabled:     e.Enabled == nil || *e.Enabled,
			MaxAttempts: e.MaxAttempts,

			SigningSecret:           e.SigningSecret,
			PreviousSigningSecret:   e.PreviousSigningSecret,
			PreviousSecretExpiresAt: e.PreviousSecretExpiresAt.UTC(),
		}
		if err := s.Validate(); err != nil {
			ee := &EntryError{Index: i, ID: e.ID, Err: err}
			return File{}, File{Lines: lines}.Locate(ee)
		}
		subs[i] = s
	}
	return File{Subscriptions: subs, Lines: lines}, nil
}

// unknownField matches yaml.v3's message for an unknown key, which names a
// Go type the user never sees.
var unknownField = regexp.MustCompile(`field (\S+) not found in type (\S+)`)

// fileKeys are the keys of the file's mappings, by the Go type yaml.v3
// names in an unknown key's message: what a misspelt key is compared with.
var fileKeys = map[string][]string{
	reflect.TypeFor[fileDoc]().String():   yamlKeys(reflect.TypeFor[fileDoc]()),
	reflect.TypeFor[fileEntry]().String(): yamlKeys(reflect.TypeFor[fileEntry]()),
}

func yamlKeys(t reflect.Type) []string {
	keys := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		keys = append(keys, name)
	}
	return keys
}

// yamlError turns yaml.v3's multi-line unmarshal errors into one line, an
// unknown key with the key it most likely misspells: `line 4: unknown key
// "event_type"; did you mean event_types?`.
func yamlError(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	msgs := make([]string, len(te.Errors))
	for i, m := range te.Errors {
		msgs[i] = unknownField.ReplaceAllStringFunc(m, func(match string) string {
			sub := unknownField.FindStringSubmatch(match)
			msg := fmt.Sprintf("unknown key %q", sub[1])
			if near, ok := config.Closest(sub[1], fileKeys[sub[2]]); ok {
				msg += "; did you mean " + near + "?"
			}
			return msg
		})
	}
	return errors.New(strings.Join(msgs, "; "))
}

// entryLines returns the line of each item of the subscriptions list, for
// error messages. It is best effort: the strict decode already succeeded.
func entryLines(data []byte) []int {
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil || len(root.Content) == 0 {
		return nil
	}
	m := root.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value != "subscriptions" {
			continue
		}
		var lines []int
		for _, item := range m.Content[i+1].Content {
			lines = append(lines, item.Line)
		}
		return lines
	}
	return nil
}

// WriteFile writes subs in the format ParseFile reads, API keys and signing
// secrets as given: a backup when they are in clear, a file apply refuses
// when they are masked (Subscription.Masked).
func WriteFile(w io.Writer, subs []Subscription) error {
	entries := make([]fileEntry, len(subs))
	for i, s := range subs {
		enabled := s.Enabled
		entries[i] = fileEntry{
			ID:          s.ID,
			TenantID:    s.TenantID,
			URL:         s.URL,
			EventTypes:  s.EventTypes,
			APIKey:      s.APIKey,
			CampaignIDs: s.CampaignIDs,
			Enabled:     &enabled,
			MaxAttempts: s.MaxAttempts,

			SigningSecret:           s.SigningSecret,
			PreviousSigningSecret:   s.PreviousSigningSecret,
			PreviousSecretExpiresAt: s.PreviousSecretExpiresAt,
		}
	}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(fileDoc{Subscriptions: &entries}); err != nil {
		return fmt.Errorf("write subscriptions file: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("write subscriptions file: %w", err)
	}
	return nil
}
