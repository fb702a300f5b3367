// Package metrics exposes webhookd's Prometheus metrics. Labels are bounded:
// event type, outcome, status class, topic and partition; never a player,
// a request or a URL.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/unibo/webhookd/delivery"
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

	// children caches the label children of the delivery metrics, so a
	// delivery does not hash its labels and look them up in the vectors'
	// locked maps (1.7% of CPU in the fast bench). Filled lazily: a series
	// appears once it is first recorded, as with WithLabelValues.
	children [len(eventTypes)]deliveryChildren
	// Per message: the consumed counters by topic ([handled, invalid]) and
	// the lag gauge by topicPartition, cached likewise.
	consumedByTopic sync.Map // string → *[2]prometheus.Counter
	lagByPartition  sync.Map // topicPartition → prometheus.Gauge
}

type topicPartition struct {
	topic     string
	partition int
}

// eventTypes are the label values Delivery caches children for; others go
// through the vectors.
var eventTypes = [...]string{"PRIZE_PAYOUT_CREATED", "PRIZE_PAYOUT_SUCCEEDED", "PRIZE_PAYOUT_FAILED", "PLAYER_OPTED_IN", "PLAYER_OPTED_OUT"}

// statusClasses are statusClass's values for statuses 0-599, by status/100.
var statusClasses = [...]string{"none", "1xx", "2xx", "3xx", "4xx", "5xx"}

// deliveryChildren are one event type's cached children.
type deliveryChildren struct {
	duration, endToEnd atomic.Pointer[prometheus.Observer]
	counts             [delivery.NumOutcomes][len(statusClasses)]atomic.Pointer[prometheus.Counter]
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
			Help: "Webhook deliveries by event type, outcome (success, failure, throttled, blocked, retried, deferred, dead_lettered) and HTTP status class.",
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
func (m *Metrics) Delivery(eventType string, o delivery.Outcome, status int, d time.Duration, eventTime time.Time) {
	t, c := index(eventTypes[:], eventType), classIndex(status)
	if t < 0 || c < 0 || o < 0 || o >= delivery.NumOutcomes {
		m.deliveryUncached(eventType, o, status, d, eventTime)
		return
	}
	ch := &m.children[t]
	cached(&ch.counts[o][c], func() prometheus.Counter {
		return m.deliveries.WithLabelValues(eventType, o.String(), statusClasses[c])
	}).Inc()
	if !o.Attempted() {
		return // blocked, retried, dead_lettered: no request, no duration to speak of
	}
	cached(&ch.duration, func() prometheus.Observer { return m.duration.WithLabelValues(eventType) }).Observe(d.Seconds())
	if o == delivery.Succeeded && !eventTime.IsZero() {
		cached(&ch.endToEnd, func() prometheus.Observer { return m.endToEnd.WithLabelValues(eventType) }).Observe(time.Since(eventTime).Seconds())
	}
}

// deliveryUncached is Delivery for label values outside the cache.
func (m *Metrics) deliveryUncached(eventType string, o delivery.Outcome, status int, d time.Duration, eventTime time.Time) {
	m.deliveries.WithLabelValues(eventType, o.String(), statusClass(status)).Inc()
	if !o.Attempted() {
		return
	}
	m.duration.WithLabelValues(eventType).Observe(d.Seconds())
	if o == delivery.Succeeded && !eventTime.IsZero() {
		m.endToEnd.WithLabelValues(eventType).Observe(time.Since(eventTime).Seconds())
	}
}

// cached returns the child in p, creating it with get the first time. Two
// racing first calls both get the vector's one child for those labels.
func cached[T any](p *atomic.Pointer[T], get func() T) T {
	if c := p.Load(); c != nil {
		return *c
	}
	c := get()
	p.Store(&c)
	return c
}

func index(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

// classIndex is the index of statusClass(status) in statusClasses, -1 for
// statuses outside 0-599.
func classIndex(status int) int {
	switch {
	case status <= 0:
		return 0
	case status < 100 || status >= 600:
		return -1
	}
	return status / 100
}

// Consumed records one consumed message.
func (m *Metrics) Consumed(topic string, invalid bool) {
	c, ok := m.consumedByTopic.Load(topic)
	if !ok {
		c, _ = m.consumedByTopic.LoadOrStore(topic, &[2]prometheus.Counter{
			m.consumed.WithLabelValues(topic, "handled"),
			m.consumed.WithLabelValues(topic, "invalid"),
		})
	}
	i := 0
	if invalid {
		i = 1
	}
	c.(*[2]prometheus.Counter)[i].Inc()
}

func statusClass(status int) string {
	if status <= 0 {
		return "none"
	}
	return strconv.Itoa(status/100) + "xx"
}

// Lag records how far a partition is behind its high watermark.
func (m *Metrics) Lag(topic string, partition int, lag int64) {
	key := topicPartition{topic, partition}
	g, ok := m.lagByPartition.Load(key)
	if !ok {
		g, _ = m.lagByPartition.LoadOrStore(key, m.lag.WithLabelValues(topic, strconv.Itoa(partition)))
	}
	g.(prometheus.Gauge).Set(float64(lag))
}

// Released forgets a partition the pod no longer owns. The consumer calls
// it once the partition's work is over, and a partition's next owner
// (in a later generation) only starts after that, so no Lag of the
// released partition races with it.
func (m *Metrics) Released(topic string, partition int) {
	m.lagByPartition.Delete(topicPartition{topic, partition})
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
