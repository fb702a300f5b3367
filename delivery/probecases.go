package delivery

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/unibo/webhookd/event"
)

// ProbeCase is one request of partner tooling (send-test, subscriptions
// test, the admin API's test) and the answer a partner following the guide
// gives to it.
type ProbeCase struct {
	Name string
	Body []byte
	// APIKey returns the key to send, given the endpoint's real one.
	APIKey func(real string) string
	Expect func(ProbeResult) bool
	// Want describes the expected answer: "2xx", "400", ...
	Want string
}

// ProbeScenarios are the error cases the guide asks partners to test.
func ProbeScenarios() []string {
	return []string{"invalid-json", "missing-field", "wrong-api-key", "slow"}
}

func ok2xx(r ProbeResult) bool { return r.Err == nil && r.Status >= 200 && r.Status < 300 }

func sameKey(k string) string { return k }

// ExampleCases returns the guide's examples of event type t ("" for all)
// and prize type prize ("" for all), each expecting a 2xx.
func ExampleCases(t event.Type, prize string) []ProbeCase {
	var out []ProbeCase
	for _, ex := range event.Examples {
		if (t != "" && ex.Type != t) || (prize != "" && ex.PrizeType != prize) {
			continue
		}
		ev, err := event.Decode([]byte(ex.Domain))
		if err != nil {
			continue // the examples are tested; never happens
		}
		out = append(out, ProbeCase{Name: ex.Name, Body: ev.Body, APIKey: sameKey, Expect: ok2xx, Want: "2xx"})
	}
	return out
}

// ScenarioCase returns the named error scenario (see ProbeScenarios).
func ScenarioCase(name string) (ProbeCase, error) {
	valid := ExampleCases(event.PrizePayoutSucceeded, "cash")[0].Body
	status := func(code int) func(ProbeResult) bool {
		return func(r ProbeResult) bool { return r.Err == nil && r.Status == code }
	}
	switch name {
	case "invalid-json":
		return ProbeCase{Name: name, Body: valid[:len(valid)/2], APIKey: sameKey, Expect: status(400), Want: "400"}, nil
	case "missing-field":
		body := strings.Replace(string(valid), `"event_type":"PRIZE_PAYOUT_SUCCEEDED",`, "", 1)
		return ProbeCase{Name: name, Body: []byte(body), APIKey: sameKey, Expect: status(400), Want: "400"}, nil
	case "wrong-api-key":
		return ProbeCase{Name: name, Body: valid, APIKey: func(string) string { return "wrong-" + randomHex() },
			Expect: status(401), Want: "401"}, nil
	case "slow":
		return ProbeCase{Name: name, Body: valid, APIKey: sameKey, Want: "2xx within 30s",
			Expect: func(r ProbeResult) bool { return ok2xx(r) && r.Duration < 30*time.Second }}, nil
	}
	return ProbeCase{}, fmt.Errorf("%q is not one of %s", name, strings.Join(ProbeScenarios(), ", "))
}

// AllProbeCases is every example and every error scenario of the guide.
func AllProbeCases() []ProbeCase {
	cases := ExampleCases("", "")
	for _, name := range ProbeScenarios() {
		c, _ := ScenarioCase(name)
		cases = append(cases, c)
	}
	return cases
}

// ProbeOutcome is the answer to one ProbeCase and whether it is the one
// the guide recommends.
type ProbeOutcome struct {
	Case string
	Want string
	OK   bool
	ProbeResult
}

// ProbeFunc sends one probe request; Probe is the real one.
type ProbeFunc func(ctx context.Context, ep Endpoint, body []byte, timeout time.Duration) ProbeResult

// RunProbes sends each case in turn to ep with a fresh webhook id and
// returns the outcomes in order.
func RunProbes(ctx context.Context, probe ProbeFunc, ep Endpoint, cases []ProbeCase, timeout time.Duration) []ProbeOutcome {
	out := make([]ProbeOutcome, 0, len(cases))
	for _, c := range cases {
		req := ep
		req.APIKey = c.APIKey(ep.APIKey)
		req.WebhookID = "msg_test_" + randomHex()
		r := probe(ctx, req, c.Body, timeout)
		out = append(out, ProbeOutcome{Case: c.Name, Want: c.Want, OK: c.Expect(r), ProbeResult: r})
	}
	return out
}

func randomHex() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
