package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/unibo/webhookd/delivery"
)

// maxEndpointSeries bounds the endpoint label: past it, endpoints (in
// name order) are summed under endpoint="other".
const maxEndpointSeries = 500

// endpointCollector reads every endpoint's scheduling state at scrape time:
// nothing is counted on the delivery path.
type endpointCollector struct {
	read                                                  func() []delivery.EndpointStatus
	limit, inFlight, queued, rate, paused, silent, ageSec *prometheus.Desc
	deferred, returned                                    *prometheus.Desc
}

// WatchEndpoints exposes the per-endpoint gauges and counters read from
// read (the Sender's Endpoints).
func (m *Metrics) WatchEndpoints(read func() []delivery.EndpointStatus) {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, []string{"endpoint"}, nil)
	}
	m.reg.MustRegister(&endpointCollector{
		read:     read,
		limit:    d("webhookd_endpoint_concurrency_limit", "An endpoint's adaptive concurrency limit now (at most delivery.endpoint_concurrency)."),
		inFlight: d("webhookd_endpoint_in_flight", "Requests outstanding to an endpoint."),
		queued:   d("webhookd_endpoint_queued", "Deliveries waiting in memory for an endpoint."),
		rate:     d("webhookd_endpoint_rate_limit", "Requests/s an endpoint is paced to since it answered 429; 0 when not paced."),
		paused:   d("webhookd_endpoint_paused_until_seconds", "Unix time a pause an endpoint asked for (429, 503 with Retry-After) ends; 0 when not paused."),
		silent:   d("webhookd_endpoint_silent", "1 while an endpoint has requests outstanding and answered none within delivery.breaker.stall_timeout."),
		ageSec:   d("webhookd_endpoint_deferred_age_seconds", "How long the last deferred delivery read back for an endpoint had waited since its first deferral."),
		deferred: d("webhookd_endpoint_deferred_total", "An endpoint's deliveries deferred through the retry tiers (its pause, its full queue, a 429, or order behind one); minus webhookd_endpoint_deferred_returned_total, summed over pods, the deferred backlog."),
		returned: d("webhookd_endpoint_deferred_returned_total", "An endpoint's deferred deliveries read back from the retry tiers."),
	})
}

func (c *endpointCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.limit, c.inFlight, c.queued, c.rate, c.paused, c.silent, c.ageSec, c.deferred, c.returned} {
		ch <- d
	}
}

func (c *endpointCollector) Collect(ch chan<- prometheus.Metric) {
	all := c.read()
	if len(all) > maxEndpointSeries {
		other := delivery.EndpointStatus{Endpoint: "other"}
		for _, e := range all[maxEndpointSeries-1:] {
			other.Limit += e.Limit
			other.InFlight += e.InFlight
			other.Queued += e.Queued
			other.Deferred += e.Deferred
			other.Returned += e.Returned
		}
		all = append(all[:maxEndpointSeries-1:maxEndpointSeries-1], other)
	}
	for _, e := range all {
		g := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, e.Endpoint)
		}
		g(c.limit, float64(e.Limit))
		g(c.inFlight, float64(e.InFlight))
		g(c.queued, float64(e.Queued))
		g(c.rate, e.Rate)
		paused := 0.0
		if !e.PausedUntil.IsZero() {
			paused = float64(e.PausedUntil.UnixMilli()) / 1000
		}
		g(c.paused, paused)
		silent := 0.0
		if e.Silent {
			silent = 1
		}
		g(c.silent, silent)
		g(c.ageSec, e.DeferredAge.Seconds())
		ch <- prometheus.MustNewConstMetric(c.deferred, prometheus.CounterValue, float64(e.Deferred), e.Endpoint)
		ch <- prometheus.MustNewConstMetric(c.returned, prometheus.CounterValue, float64(e.Returned), e.Endpoint)
	}
}
