package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/unibo/webhookd/consumer"
	"github.com/unibo/webhookd/internal/testenv"
	"github.com/unibo/webhookd/subscriptions"
)

// A second worker joins the group mid-stream and leaves again: the
// partitions move twice, and every event is still delivered.
func TestRebalanceLosesNothing(t *testing.T) {
	s := newSuite(t)
	rc := testenv.NewReceiver(t)
	// Random partner latency keeps deliveries in flight while partitions move.
	rc.SetRespond(func(r testenv.Request) int {
		time.Sleep(time.Duration(len(r.Body)%10) * time.Millisecond)
		return http.StatusOK
	})
	s.subscribe(subscriptions.Subscription{TenantID: "acme", URL: rc.URL})
	s.start()

	const total = 600
	produce := func(from, to int) {
		var msgs []kafka.Message
		for i := from; i < to; i++ {
			key := fmt.Sprint("player-", i%17)
			msgs = append(msgs, kafka.Message{Topic: s.cfg.Kafka.Topics[0], Key: []byte(key),
				Value: []byte(payout("acme", "c1", fmt.Sprint("req-", i), key))})
		}
		testenv.Produce(t, s.cfg.Kafka.Brokers, msgs...)
	}
	produce(0, 200)
	second := s.start()
	produce(200, 400)
	testenv.Eventually(t, 30*time.Second, "the second worker to take a share", func() bool {
		return second.Consumer().Stats().Handled.Load() > 0
	})
	second.Stop(t)
	produce(400, total)

	seen := map[string]int{}
	testenv.Eventually(t, 60*time.Second, "every event delivered", func() bool {
		clear(seen)
		for _, r := range rc.Requests() {
			var m map[string]any
			_ = json.Unmarshal(r.Body, &m)
			seen[fmt.Sprint(m["request_id"])]++
		}
		return len(seen) == total
	})
	dups := 0
	for _, n := range seen {
		dups += n - 1
	}
	t.Logf("%d events, %d deliveries, %d duplicates across two rebalances", total, rc.Count(), dups)
}

// Startup creates missing topics with kafka.partitions partitions and never
// alters an existing topic.
func TestTopicsCreatedButNeverShrunkOrGrown(t *testing.T) {
	s := newSuite(t)
	existing := s.cfg
	existing.Kafka.Topics = s.cfg.Kafka.Topics[:1]
	existing.Kafka.Partitions = 2
	testenv.CreateTopics(t, existing)

	s.cfg.Kafka.Partitions = 4
	w := s.start()
	got := partitions(t, s.cfg.Kafka.Brokers, s.cfg.Kafka.Topics...)
	if got[s.cfg.Kafka.Topics[0]] != 2 || got[s.cfg.Kafka.Topics[1]] != 4 {
		t.Fatalf("partitions %v: want the existing topic left at 2 and the missing one created with 4", got)
	}
	if len(w.Logs.FilterMessage("topic has fewer partitions than kafka.partitions; leaving it as it is").All()) != 1 {
		t.Fatal("no log line about the smaller existing topic")
	}
	// Running the creation again is harmless.
	if err := consumer.EnsureTopics(context.Background(), s.cfg.Kafka, zap.NewNop()); err != nil {
		t.Fatal(err)
	}
}

func partitions(t *testing.T, brokers []string, topics ...string) map[string]int {
	t.Helper()
	// A transport of its own: the shared default one serves cached metadata.
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second, Transport: &kafka.Transport{}}
	md, err := client.Metadata(context.Background(), &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, tp := range md.Topics {
		out[tp.Name] = len(tp.Partitions)
	}
	return out
}

// GroupLag (what `webhookd status` prints) reports each partition's end,
// committed offset and lag; once the worker has caught up, the lag is 0.
func TestGroupLagOnceCaughtUp(t *testing.T) {
	s := newSuite(t)
	rc := testenv.NewReceiver(t)
	s.subscribe(subscriptions.Subscription{TenantID: "acme", URL: rc.URL})
	w := s.start()
	for i := 0; i < 10; i++ {
		s.publish(fmt.Sprint("p", i), payout("acme", "c1", fmt.Sprint("r-", i), fmt.Sprint("p", i)))
	}
	waitHandled(t, w, 10)
	var lags []consumer.PartitionLag
	testenv.Eventually(t, 10*time.Second, "every partition committed to its end", func() bool {
		var err error
		lags, err = consumer.GroupLag(context.Background(), s.cfg.Kafka, s.cfg.Kafka.GroupID, s.cfg.Kafka.Topics)
		if err != nil {
			t.Fatal(err)
		}
		var ends, lag int64
		for _, l := range lags {
			ends += l.End
			lag += l.Lag
		}
		return ends == 10 && lag == 0
	})
	if len(lags) != 2*s.cfg.Kafka.Partitions {
		t.Fatalf("%d partitions reported, want %d", len(lags), 2*s.cfg.Kafka.Partitions)
	}
}
