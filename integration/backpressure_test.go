package integration

import (
	"fmt"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/unibo/webhookd/internal/testenv"
	"github.com/unibo/webhookd/subscriptions"
)

// With the only endpoint stalled, fetching stops at the in-flight bounds:
// the backlog stays in Kafka, not in the worker's memory.
func TestBackpressureHoldsMemoryFlatWithStalledEndpoint(t *testing.T) {
	if testing.Short() {
		t.Skip("produces a 200,000-event backlog")
	}
	s := newSuite(t)
	s.cfg.Consumer.MaxInFlight = 50
	s.cfg.Consumer.MaxInFlightTotal = 100
	s.cfg.Delivery.EndpointConcurrency = 20
	s.cfg.Delivery.Timeout = time.Minute
	s.cfg.Delivery.Breaker.StallTimeout = time.Minute // keep the circuit closed: test the bounds alone
	s.cfg.ShutdownTimeout = time.Second
	release := make(chan struct{})
	rc := testenv.NewReceiver(t)
	rc.SetRespond(func(testenv.Request) int {
		<-release
		return http.StatusOK
	})
	s.subscribe(subscriptions.Subscription{TenantID: "acme", URL: rc.URL})
	testenv.CreateTopics(t, s.cfg)

	const backlog = 200_000
	msgs := make([]kafka.Message, 0, 10_000)
	for i := 0; i < backlog; i++ {
		key := fmt.Sprint("player-", i%5000)
		msgs = append(msgs, kafka.Message{Topic: s.cfg.Kafka.Topics[0], Key: []byte(key),
			Value: []byte(payout("acme", "summer-campaign-2024", fmt.Sprintf("550e8400-e29b-41d4-a716-%012d", i), key))})
		if len(msgs) == cap(msgs) {
			testenv.Produce(t, s.cfg.Kafka.Brokers, msgs...)
			msgs = msgs[:0]
		}
	}
	base := heapInUse()

	w := s.start()
	defer close(release)
	testenv.Eventually(t, 30*time.Second, "the endpoint's slots to fill", func() bool { return rc.Count() >= 20 })
	time.Sleep(time.Second)
	first := heapInUse()
	time.Sleep(3 * time.Second)
	second := heapInUse()

	if got := rc.Count(); got != 20 {
		t.Errorf("%d requests reached the stalled endpoint, want its concurrency limit, 20", got)
	}
	if h := w.Consumer().Stats().Handled.Load(); h != 0 {
		t.Errorf("%d messages handled while the only endpoint is stalled", h)
	}
	const mb = 1 << 20
	t.Logf("heap in use: %d MB before the worker, %d MB stalled, %d MB 3 s later (backlog ~%d MB)",
		base/mb, first/mb, second/mb, backlog*250/mb)
	if second > first+5*mb {
		t.Errorf("heap grew from %d MB to %d MB while stalled", first/mb, second/mb)
	}
	// The worker's own footprint (readers, lanes, pools; more under -race)
	// is some tens of MB; the backlog read into memory would be well over
	// its raw 46 MB.
	if second > base+50*mb {
		t.Errorf("heap %d MB over the %d MB baseline: the backlog is being read into memory", (second-base)/mb, base/mb)
	}
	if n := w.Consumer().InFlight(); n > s.cfg.Consumer.MaxInFlightTotal {
		t.Errorf("%d messages in flight, above consumer.max_in_flight_total %d", n, s.cfg.Consumer.MaxInFlightTotal)
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}
