package delivery

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// A record carries only the timestamps that happened: a dead letter has no
// not_before, a retry record no dead_lettered_at (not "0001-01-01T00:00:00Z",
// which a partner's support desk would read as a date).
func TestRecordOmitsTimestampsThatDidNotHappen(t *testing.T) {
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	base := Record{WebhookID: "msg_1", SubscriptionID: "sub_1", Body: json.RawMessage(`{}`), FirstAttempt: at, LastAttempt: at}
	dead, retry := base, base
	dead.DeadAt, retry.NotBefore = at, at
	for name, tc := range map[string]struct {
		rec    Record
		has    string
		hasNot string
	}{
		"dead letter":  {dead, `"dead_lettered_at"`, `"not_before"`},
		"retry record": {retry, `"not_before"`, `"dead_lettered_at"`},
	} {
		b, err := json.Marshal(tc.rec)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), tc.has) || strings.Contains(string(b), tc.hasNot) || strings.Contains(string(b), "0001-01-01") {
			t.Errorf("%s: %s", name, b)
		}
		back, err := DecodeRecord(b)
		if err != nil || !back.FirstAttempt.Equal(at) || !back.DeadAt.Equal(tc.rec.DeadAt) || !back.NotBefore.Equal(tc.rec.NotBefore) {
			t.Errorf("%s: decoded %+v, %v", name, back, err)
		}
	}
}
