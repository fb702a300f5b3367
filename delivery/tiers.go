package delivery

import (
	"strings"
	"time"
)

// A record waiting for a later attempt is written to one of the retry
// topic's delay tiers: <delivery.retry.topic>.1s, .5s, .30s, .2m, .10m and
// .1h. A tier's consumer holds each record until its append time plus the
// tier's delay (the gate) and only then reads on. Append times grow with
// the offset, so waiting for the head's gate never delays a record that is
// due: nothing waits behind a later one, unlike one topic of mixed due
// times, where a record an hour away holds every record behind it. A record
// still early at its gate moves on to the tier of what remains (a hop: at
// most a few writes, even for an hour's wait). The retry topic itself is
// read ungated: records due at once, and those written before the tiers.
var tiers = [...]struct {
	name  string
	delay time.Duration
}{
	{"1s", time.Second},
	{"5s", 5 * time.Second},
	{"30s", 30 * time.Second},
	{"2m", 2 * time.Minute},
	{"10m", 10 * time.Minute},
	{"1h", time.Hour},
}

// RetryTopics are the retry topic and its delay tiers: every topic the
// retry consumer reads and the sink writes waiting records to.
func RetryTopics(base string) []string {
	topics := make([]string, 0, len(tiers)+1)
	topics = append(topics, base)
	for _, t := range tiers {
		topics = append(topics, base+"."+t.name)
	}
	return topics
}

// tierTopic is the topic for a record due in wait: the longest tier not
// longer than the wait (the shortest for a wait under a second), or the
// retry topic itself when it is due now.
func tierTopic(base string, wait time.Duration) string {
	if wait <= 0 {
		return base
	}
	i := 0
	for i+1 < len(tiers) && tiers[i+1].delay <= wait {
		i++
	}
	return base + "." + tiers[i].name
}

// TierDelay is how long after its append time a record of topic may be
// read: the tier's delay, 0 for the retry topic itself or a topic not of
// base.
func TierDelay(base, topic string) time.Duration {
	name, ok := strings.CutPrefix(topic, base+".")
	if !ok {
		return 0
	}
	for _, t := range tiers {
		if t.name == name {
			return t.delay
		}
	}
	return 0
}
