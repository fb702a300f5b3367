package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/unibo/webhookd/delivery"
)

// BenchmarkDelivery is the metrics work of one successful delivery.
func BenchmarkDelivery(b *testing.B) {
	m := New(func() float64 { return 0 }, func() (int, time.Time) { return 0, time.Time{} })
	at := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		m.Delivery("PRIZE_PAYOUT_SUCCEEDED", delivery.Succeeded, 200, 3*time.Millisecond, at)
	}
}

// BenchmarkConsumed is the metrics work of one consumed message.
func BenchmarkConsumed(b *testing.B) {
	m := New(func() float64 { return 0 }, func() (int, time.Time) { return 0, time.Time{} })
	b.ReportAllocs()
	for b.Loop() {
		m.Lag("prize-payouts", 11, 1234)
		m.Consumed("prize-payouts", false)
	}
}

// A released partition's lag series goes away, and comes back with its
// next Lag.
func TestLagReleasedAndRecordedAgain(t *testing.T) {
	m := New(func() float64 { return 0 }, func() (int, time.Time) { return 0, time.Time{} })
	series := func() int {
		fams, err := m.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fams {
			if f.GetName() == "webhookd_consumer_lag" {
				return len(f.GetMetric())
			}
		}
		return 0
	}
	m.Lag("t", 1, 5)
	m.Lag("t", 2, 7)
	m.Consumed("t", false)
	m.Consumed("t", true)
	if n := series(); n != 2 {
		t.Fatalf("%d lag series, want 2", n)
	}
	m.Released("t", 1)
	if n := series(); n != 1 {
		t.Fatalf("%d lag series after a release, want 1", n)
	}
	m.Lag("t", 1, 3)
	if n := series(); n != 2 {
		t.Fatalf("%d lag series after the partition came back, want 2", n)
	}
}

// The cached children count on the same series as the vectors; label
// values outside the cache still work.
func TestDeliveryCountsPerLabels(t *testing.T) {
	m := New(func() float64 { return 0 }, func() (int, time.Time) { return 0, time.Time{} })
	for range 3 {
		m.Delivery("PLAYER_OPTED_IN", delivery.Succeeded, 204, time.Millisecond, time.Now())
	}
	m.Delivery("PLAYER_OPTED_IN", delivery.Failed, 503, time.Millisecond, time.Time{})
	m.Delivery("PLAYER_OPTED_IN", delivery.Blocked, 0, 0, time.Time{})
	m.Delivery("PLAYER_OPTED_IN", delivery.Failed, 799, time.Millisecond, time.Time{})
	m.Delivery("SOMETHING_ELSE", delivery.Succeeded, 200, time.Millisecond, time.Now())

	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, s := range f.GetMetric() {
			var labels []string
			for _, l := range s.GetLabel() {
				labels = append(labels, l.GetValue())
			}
			key := f.GetName() + "{" + strings.Join(labels, ",") + "}"
			switch {
			case s.GetCounter() != nil:
				got[key] = s.GetCounter().GetValue()
			case s.GetHistogram() != nil:
				got[key] = float64(s.GetHistogram().GetSampleCount())
			}
		}
	}
	want := map[string]float64{
		"webhookd_deliveries_total{PLAYER_OPTED_IN,success,2xx}":  3,
		"webhookd_deliveries_total{PLAYER_OPTED_IN,failure,5xx}":  1,
		"webhookd_deliveries_total{PLAYER_OPTED_IN,blocked,none}": 1,
		"webhookd_deliveries_total{PLAYER_OPTED_IN,failure,7xx}":  1,
		"webhookd_deliveries_total{SOMETHING_ELSE,success,2xx}":   1,
		"webhookd_delivery_duration_seconds{PLAYER_OPTED_IN}":     5,
		"webhookd_delivery_duration_seconds{SOMETHING_ELSE}":      1,
		"webhookd_event_to_delivery_seconds{PLAYER_OPTED_IN}":     3,
		"webhookd_event_to_delivery_seconds{SOMETHING_ELSE}":      1,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok && strings.HasPrefix(k, "webhookd_deliver") {
			t.Errorf("unexpected series %s", k)
		}
	}
}
