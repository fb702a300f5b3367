package integration

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/unibo/webhookd/internal/testenv"
	"github.com/unibo/webhookd/subscriptions"
)

// /metrics on the ops port counts what a Prometheus user would alert on.
func TestMetricsCountDeliveriesAndConsumption(t *testing.T) {
	s := newSuite(t)
	ok, broken := testenv.NewReceiver(t), testenv.NewReceiver(t)
	broken.SetRespond(func(testenv.Request) int { return http.StatusInternalServerError })
	s.subscribe(subscriptions.Subscription{TenantID: "acme", URL: ok.URL})
	s.subscribe(subscriptions.Subscription{TenantID: "acme", URL: broken.URL})
	w := s.start()

	for i := 0; i < 3; i++ {
		s.publish(fmt.Sprint("p", i), payout("acme", "c1", fmt.Sprint("r-", i), fmt.Sprint("p", i)))
	}
	s.publish("junk", `{"not":"an event"}`)
	waitHandled(t, w, 4)

	body := scrape(t, w)
	topic := s.cfg.Kafka.Topics[0]
	for _, want := range []string{
		`webhookd_deliveries_total{event_type="PRIZE_PAYOUT_SUCCEEDED",outcome="success",status_class="2xx"} 3`,
		`webhookd_deliveries_total{event_type="PRIZE_PAYOUT_SUCCEEDED",outcome="failure",status_class="5xx"} 3`,
		`webhookd_deliveries_total{event_type="PRIZE_PAYOUT_SUCCEEDED",outcome="dead_lettered",status_class="5xx"} 3`,
		`webhookd_events_consumed_total{outcome="handled",topic="` + topic + `"} 3`,
		`webhookd_events_consumed_total{outcome="invalid",topic="` + topic + `"} 1`,
		`webhookd_delivery_duration_seconds_count{event_type="PRIZE_PAYOUT_SUCCEEDED"} 6`,
		`webhookd_event_to_delivery_seconds_count{event_type="PRIZE_PAYOUT_SUCCEEDED"} 3`,
		`webhookd_subscriptions 2`,
		`webhookd_in_flight 0`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// Lag is reported per owned partition and is 0 once everything is read.
	if !strings.Contains(body, `webhookd_consumer_lag{partition="`) || strings.Contains(grepLines(body, "webhookd_consumer_lag{"), "} 1") {
		t.Errorf("consumer lag missing or not caught up:\n%s", grepLines(body, "webhookd_consumer_lag"))
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", grepLines(body, "webhookd_"))
	}
}

// An owned partition that has not delivered a message yet still has a lag
// series: an alert on webhookd_consumer_lag must see an idle or stuck
// partition from assignment on.
func TestConsumerLagReportedFromAssignment(t *testing.T) {
	s := newSuite(t)
	w := s.start()
	topic := s.cfg.Kafka.Topics[0]
	var body string
	testenv.Eventually(t, 10*time.Second, "a lag series for every partition", func() bool {
		body = scrape(t, w)
		for p := 0; p < s.cfg.Kafka.Partitions; p++ {
			if !strings.Contains(body, fmt.Sprintf("webhookd_consumer_lag{partition=%q,topic=%q} 0\n", fmt.Sprint(p), topic)) {
				return false
			}
		}
		return true
	})
	if t.Failed() {
		t.Logf("/metrics:\n%s", grepLines(body, "webhookd_consumer_lag"))
	}
	if got := w.Consumer().Stats().Handled.Load(); got != 0 {
		t.Fatalf("handled %d messages on an empty topic", got)
	}
}

// scrape reads the worker's /metrics.
func scrape(t *testing.T, w *testenv.Worker) string {
	t.Helper()
	var body string
	testenv.Eventually(t, 5*time.Second, "metrics", func() bool {
		resp, err := http.Get("http://" + w.OpsAddr() + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return resp.StatusCode == http.StatusOK
	})
	return body
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
