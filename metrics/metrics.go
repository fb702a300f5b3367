// Package metrics exposes webhookd's Prometheus metrics. Labels are bounded:
// event type, outcome, status class, topic and partition; never a player,
// a request or a URL.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the collectors, registered on a registry of their own.
type Metrics struct {
	reg        *prometheus.Registry
	deliveries *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	endToEnd   *prometheus.HistogramVec
	consumed   *prometheus.CounterVec
	lag        *prometheus.GaugeVec
	circuit    *prometheus.GaugeVec
}

// TableStatus is what the subscription table reports about itself.
type TableStatus func() (size int, loadedAt time.Time)

// New registers webhookd's metrics plus the Go runtime and process ones.
// inFlight reports the messages in flight; table the subscription table.
func New(inFlight func() float64, table TableStatus) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "webhookd_deliveries_total",
			Help: "Webhook deliveries by event type, outcome (success, failure, blocked, retried, dead_lettered) and HTTP status class.",
		}, []string{"event_type", "outcome", "status_class"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "webhookd_delivery_duration_seconds",
			Help:    "Duration of delivery attempts, from asking the endpoint for a slot to the partner's answer.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"event_type"}),
		endToEnd: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "webhookd_event_to_delivery_seconds",
			Help:    "From the Kafka message timestamp to the partner's 2xx.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"event_type"}),
		consumed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "webhookd_events_consumed_total",
			Help: "Messages consumed by topic and outcome (handled, invalid).",
		}, []string{"topic", "outcome"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "webhookd_consumer_lag",
			Help: "Messages behind the high watermark, per partition this pod owns (as of its last fetch).",
		}, []string{"topic", "partition"}),
		circuit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "webhookd_circuit_open",
			Help: "1 while an endpoint's (scheme://host:port) circuit is open or half-open, 0 once closed.",
		}, []string{"endpoint"}),
	}
	m.reg.MustRegister(m.deliveries, m.duration, m.endToEnd, m.consumed, m.lag, m.circuit,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "webhookd_in_flight",
			Help: "Messages read and not yet finished, over every partition of the pod.",
		}, inFlight),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "webhookd_subscriptions",
			Help: "Subscriptions in the pod's copy of the table.",
		}, func() float64 { n, _ := table(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "webhookd_subscriptions_age_seconds",
			Help: "Seconds since the pod's copy of the subscription table was last loaded from Redis.",
		}, func() float64 {
			_, at := table()
			if at.IsZero() {
				return -1
			}
			return time.Since(at).Seconds()
		}),
	)
	return m
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Delivery records one delivery outcome.
func (m *Metrics) Delivery(eventType, outcome string, status int, d time.Duration, eventTime time.Time) {
	m.deliveries.WithLabelValues(eventType, outcome, statusClass(status)).Inc()
	if outcome != "success" && outcome != "failure" {
		return // not an attempt: no duration to speak of
	}
	m.duration.WithLabelValues(eventType).Observe(d.Seconds())
	if outcome == "success" && !eventTime.IsZero() {
		m.endToEnd.WithLabelValues(eventType).Observe(time.Since(eventTime).Seconds())
	}
}

// Consumed records one consumed message.
func (m *Metrics) Consumed(topic string, invalid bool) {
	outcome := "handled"
	if invalid {
		outcome = "invalid"
	}
	m.consumed.WithLabelValues(topic, outcome).Inc()
}

func statusClass(status int) string {
	if status <= 0 {
		return "none"
	}
	return strconv.Itoa(status/100) + "xx"
}

// Lag records how far a partition is behind its high watermark.
func (m *Metrics) Lag(topic string, partition int, lag int64) {
	m.lag.WithLabelValues(topic, strconv.Itoa(partition)).Set(float64(lag))
}

// Released forgets a partition the pod no longer owns.
func (m *Metrics) Released(topic string, partition int) {
	m.lag.DeleteLabelValues(topic, strconv.Itoa(partition))
}

// Circuit records an endpoint's circuit state.
func (m *Metrics) Circuit(endpoint string, open bool) {
	v := 0.0
	if open {
		v = 1
	}
	m.circuit.WithLabelValues(endpoint).Set(v)
}
