package metrics

import (
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/unibo/webhookd/delivery"
)

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, err := io.ReadAll(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A throttled, paused endpoint shows its limit, rate, pause and deferred
// counts in /metrics, read at scrape time.
func TestEndpointStateIsExposedPerEndpoint(t *testing.T) {
	m := New(func() float64 { return 0 }, func() (int, time.Time) { return 0, time.Time{} })
	until := time.Unix(1_800_000_000, 0)
	m.WatchEndpoints(func() []delivery.EndpointStatus {
		return []delivery.EndpointStatus{{Endpoint: "https://p.example:443", Limit: 96, Ceiling: 384, InFlight: 7, Queued: 3,
			Rate: 612.5, PausedUntil: until, Silent: true, Deferred: 40, Returned: 15, DeferredAge: 90 * time.Second}}
	})
	out := scrape(t, m)
	for _, want := range []string{
		`webhookd_endpoint_concurrency_limit{endpoint="https://p.example:443"} 96`,
		`webhookd_endpoint_in_flight{endpoint="https://p.example:443"} 7`,
		`webhookd_endpoint_queued{endpoint="https://p.example:443"} 3`,
		`webhookd_endpoint_rate_limit{endpoint="https://p.example:443"} 612.5`,
		`webhookd_endpoint_paused_until_seconds{endpoint="https://p.example:443"} 1.8e+09`,
		`webhookd_endpoint_silent{endpoint="https://p.example:443"} 1`,
		`webhookd_endpoint_deferred_total{endpoint="https://p.example:443"} 40`,
		`webhookd_endpoint_deferred_returned_total{endpoint="https://p.example:443"} 15`,
		`webhookd_endpoint_deferred_age_seconds{endpoint="https://p.example:443"} 90`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// However many endpoints there are, the endpoint label has at most
// maxEndpointSeries values: the rest are summed under "other".
func TestEndpointSeriesAreBounded(t *testing.T) {
	m := New(func() float64 { return 0 }, func() (int, time.Time) { return 0, time.Time{} })
	var eps []delivery.EndpointStatus
	for i := range maxEndpointSeries + 100 {
		eps = append(eps, delivery.EndpointStatus{Endpoint: fmt.Sprintf("https://p%04d.example:443", i), InFlight: 1})
	}
	m.WatchEndpoints(func() []delivery.EndpointStatus { return eps })
	out := scrape(t, m)
	if n := strings.Count(out, "webhookd_endpoint_in_flight{"); n != maxEndpointSeries {
		t.Errorf("%d in-flight series, want %d", n, maxEndpointSeries)
	}
	if want := `webhookd_endpoint_in_flight{endpoint="other"} 101`; !strings.Contains(out, want) {
		t.Errorf("/metrics lacks %s", want)
	}
}
