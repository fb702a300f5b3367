package metrics

import (
	"strings"
	"testing"
	"time"
)

// BenchmarkDelivery is the metrics work of one successful delivery.
func BenchmarkDelivery(b *testing.B) {
	m := New(func() float64 { return 0 }, func() (int, time.Time) { return 0, time.Time{} })
	at := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		m.Delivery("PRIZE_PAYOUT_SUCCEEDED", "success", 200, 3*time.Millisecond, at)
	}
}

// The cached children count on the same series as the vectors; label
// values outside the cache still work.
func TestDeliveryCountsPerLabels(t *testing.T) {
	m := New(func() float64 { return 0 }, func() (int, time.Time) { return 0, time.Time{} })
	for range 3 {
		m.Delivery("PLAYER_OPTED_IN", "success", 204, time.Millisecond, time.Now())
	}
	m.Delivery("PLAYER_OPTED_IN", "failure", 503, time.Millisecond, time.Time{})
	m.Delivery("PLAYER_OPTED_IN", "blocked", 0, 0, time.Time{})
	m.Delivery("PLAYER_OPTED_IN", "failure", 799, time.Millisecond, time.Time{})
	m.Delivery("SOMETHING_ELSE", "success", 200, time.Millisecond, time.Now())

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
