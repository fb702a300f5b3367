package metrics

import (
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
