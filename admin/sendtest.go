package admin

import (
	"net/http"
	"strings"
	"time"

	"github.com/unibo/webhookd/config"
	"github.com/unibo/webhookd/delivery"
	"github.com/unibo/webhookd/event"
	"github.com/unibo/webhookd/subscriptions"
)

// Probe timeouts: the guide gives partners 30 s to answer.
const (
	defaultProbeTimeout = 30 * time.Second
	maxProbeTimeout     = 2 * time.Minute
)

// probeSelection picks send-test's cases: one example (event_type, with
// prize_type for a payout), one error scenario, or, when both are absent,
// every example and every scenario (as `webhookd subscriptions test`).
type probeSelection struct {
	EventType string `json:"event_type"`
	PrizeType string `json:"prize_type"`
	Scenario  string `json:"scenario"`
	// Timeout per answer, a Go duration; 30s when absent.
	Timeout string `json:"timeout"`
}

// probeFields are probeSelection's fields, which have no "" value.
var probeFields = []string{"event_type", "prize_type", "scenario", "timeout"}

func (p probeSelection) cases() ([]delivery.ProbeCase, time.Duration, error) {
	timeout := defaultProbeTimeout
	if p.Timeout != "" {
		d, err := time.ParseDuration(p.Timeout)
		if err != nil || d <= 0 || d > maxProbeTimeout {
			return nil, 0, badRequest("timeout", "field \"timeout\": want a duration from 1ms to %s such as 10s, got %q", maxProbeTimeout, p.Timeout)
		}
		timeout = d
	}
	switch {
	case p.Scenario != "" && (p.EventType != "" || p.PrizeType != ""):
		return nil, 0, badRequest("scenario", "give either scenario or event_type, not both")
	case p.Scenario != "":
		c, err := delivery.ScenarioCase(p.Scenario)
		if err != nil {
			return nil, 0, badRequest("scenario", "field \"scenario\": %v", err)
		}
		return []delivery.ProbeCase{c}, timeout, nil
	case p.EventType != "":
		if _, err := event.ParseType(p.EventType); err != nil {
			return nil, 0, badRequest("event_type", "field \"event_type\": %v", err)
		}
		cases := delivery.ExampleCases(event.Type(p.EventType), p.PrizeType)
		if len(cases) == 0 {
			return nil, 0, badRequest("prize_type", "the guide has no %s example with prize type %q", p.EventType, p.PrizeType)
		}
		return cases, timeout, nil
	case p.PrizeType != "":
		return nil, 0, badRequest("event_type", "prize_type needs an event_type")
	}
	return delivery.AllProbeCases(), timeout, nil
}

// probeReport is send-test's answer: one result per case.
type probeReport struct {
	SubscriptionID string        `json:"subscription_id,omitempty"`
	URL            string        `json:"url"`
	Passed         int           `json:"passed"`
	Failed         int           `json:"failed"`
	Results        []probeResult `json:"results"`
}

type probeResult struct {
	Test     string `json:"test"`
	Expected string `json:"expected"`
	// OK says whether the answer is the one the guide recommends.
	OK bool `json:"ok"`
	// Status is 0 when there was no answer.
	Status    int     `json:"status"`
	LatencyMS float64 `json:"latency_ms"`
	// Answer is the start of the response body.
	Answer string `json:"answer,omitempty"`
	Error  string `json:"error,omitempty"`
}

// testSubscription sends the guide's examples and error scenarios to a
// stored subscription's URL with its API key.
func (h *Handler) testSubscription(w http.ResponseWriter, r *http.Request) error {
	var sel probeSelection
	fields, err := readJSON(w, r, &sel, true)
	if err != nil {
		return err
	}
	if err := refuseEmpty(fields, probeFields...); err != nil {
		return err
	}
	cases, timeout, err := sel.cases()
	if err != nil {
		return err
	}
	sub, err := h.store.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	ep := delivery.EndpointOf(&sub, "", time.Now())
	writeJSON(w, http.StatusOK, h.runProbes(r, ep, cases, timeout))
	return nil
}

type sendTestRequest struct {
	URL    string `json:"url"`
	APIKey string `json:"api_key"`
	probeSelection
}

// sendTest is `webhookd send-test --url`: the same cases to any http(s) URL.
func (h *Handler) sendTest(w http.ResponseWriter, r *http.Request) error {
	var req sendTestRequest
	fields, err := readJSON(w, r, &req, false)
	if err != nil {
		return err
	}
	if err := refuseEmpty(fields, probeFields...); err != nil {
		return err
	}
	// The subscription rules check the URL and the key.
	probe := subscriptions.Subscription{TenantID: "send-test", URL: req.URL, APIKey: req.APIKey, EventTypes: event.Types[:1]}
	if err := probe.Validate(); err != nil {
		return err
	}
	cases, timeout, err := req.cases()
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, h.runProbes(r, delivery.Endpoint{URL: req.URL, APIKey: req.APIKey}, cases, timeout))
	return nil
}

func (h *Handler) runProbes(r *http.Request, ep delivery.Endpoint, cases []delivery.ProbeCase, timeout time.Duration) probeReport {
	rep := probeReport{SubscriptionID: ep.SubscriptionID, URL: ep.URL, Results: make([]probeResult, 0, len(cases))}
	// A partner echoing the request must not make the API show the key.
	scrub := func(s string) string { return scrubSecret(s, ep.APIKey) }
	for _, o := range delivery.RunProbes(r.Context(), h.probe, ep, cases, timeout) {
		res := probeResult{
			Test: o.Case, Expected: o.Want, OK: o.OK, Status: o.Status,
			LatencyMS: float64(o.Duration.Microseconds()) / 1000, Answer: scrub(o.Excerpt),
		}
		if o.Err != nil {
			res.Error = scrub(o.Err.Error())
		}
		if o.OK {
			rep.Passed++
		} else {
			rep.Failed++
		}
		rep.Results = append(rep.Results, res)
	}
	return rep
}

// scrubSecret masks secret in s, also when s was cut in the middle of it
// (an answer excerpt ends wherever its 200 bytes do): a tail of s that is a
// prefix of the secret, 4 bytes or longer, is masked too.
func scrubSecret(s, secret string) string {
	if secret == "" {
		return s
	}
	s = strings.ReplaceAll(s, secret, config.Mask(secret))
	for n := min(len(secret)-1, len(s)); n >= 4; n-- {
		if strings.HasSuffix(s, secret[:n]) {
			return s[:len(s)-n] + "****"
		}
	}
	return s
}
