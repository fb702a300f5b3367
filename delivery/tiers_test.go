package delivery

import (
	"testing"
	"time"
)

// A record goes to the longest tier that does not overshoot its wait, so a
// tier never holds it past its due time by more than the shortest tier, and
// the consumer of each tier gates it by that tier's delay.
func TestTierTopicNeverOvershootsTheWait(t *testing.T) {
	cases := []struct {
		wait time.Duration
		want string
	}{
		{-time.Second, "r"},
		{0, "r"},
		{300 * time.Millisecond, "r.1s"},
		{time.Second, "r.1s"},
		{4999 * time.Millisecond, "r.1s"},
		{5 * time.Second, "r.5s"},
		{time.Minute, "r.30s"},
		{9 * time.Minute, "r.2m"},
		{59 * time.Minute, "r.10m"},
		{time.Hour, "r.1h"},
		{30 * time.Hour, "r.1h"},
	}
	for _, tc := range cases {
		topic := tierTopic("r", tc.wait)
		if topic != tc.want {
			t.Errorf("wait %s: topic %s, want %s", tc.wait, topic, tc.want)
		}
		if d := TierDelay("r", topic); tc.wait >= time.Second && d > tc.wait {
			t.Errorf("wait %s: tier %s holds it %s, longer than the wait", tc.wait, topic, d)
		}
	}
	if d := TierDelay("r", "r"); d != 0 {
		t.Errorf("the retry topic itself is gated by %s", d)
	}
	if d := TierDelay("r", "other.5s"); d != 0 {
		t.Errorf("a topic of another base is gated by %s", d)
	}
	if got := RetryTopics("r"); len(got) != 7 || got[0] != "r" || got[6] != "r.1h" {
		t.Errorf("retry topics %v", got)
	}
}
