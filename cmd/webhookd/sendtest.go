package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/unibo/webhookd/delivery"
	"github.com/unibo/webhookd/egress"
	"github.com/unibo/webhookd/event"
	"github.com/unibo/webhookd/subscriptions"
)

// scenarios are the error cases the guide asks partners to test, with the
// answer it recommends.
var scenarios = []string{"invalid-json", "missing-field", "wrong-api-key", "slow"}

type sendTestFlags struct {
	url, apiKey, signingSecret, eventType, prizeType, subscription, scenario string
	all                                                                      bool
	timeout                                                                  time.Duration
}

func newSendTestCmd(g *globals) *cobra.Command {
	var f sendTestFlags
	cmd := &cobra.Command{
		Use:   "send-test (--url U [--api-key K] | --subscription ID) (--event TYPE [--prize-type P] | --all | --scenario S)",
		Short: "POST the guide's example payloads (or its error scenarios) to an endpoint and report how it answered",
		Long: "send-test sends what webhookd would send, with the production headers, and prints the partner's status,\n" +
			"latency and the start of its answer. --scenario sends the guide's error cases and says whether the\n" +
			"endpoint answered as the guide recommends: invalid-json → 400, missing-field → 400,\n" +
			"wrong-api-key → 401, slow → 2xx within 30 s.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.load()
			if err != nil {
				return err
			}
			ep, err := f.endpoint(cmd.Context(), g)
			if err != nil {
				return err
			}
			var cases []probeCase
			switch {
			case f.scenario != "":
				c, err := scenarioCase(f.scenario)
				if err != nil {
					return err
				}
				cases = []probeCase{c}
			case f.all:
				cases = exampleCases("", "")
			case f.eventType != "":
				if _, err := event.ParseType(f.eventType); err != nil {
					return fmt.Errorf("--event: %w", err)
				}
				cases = exampleCases(event.Type(f.eventType), f.prizeType)
				if len(cases) == 0 {
					return fmt.Errorf("--prize-type: the guide has no %s example with prize type %q", f.eventType, f.prizeType)
				}
			default:
				return errors.New("give --event TYPE, --all or --scenario " + strings.Join(scenarios, "|"))
			}
			return runProbes(cmd.Context(), g.stdout, cfg.Delivery.Egress(), ep, cases, f.timeout)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.url, "url", "", "endpoint to test")
	fl.StringVar(&f.apiKey, "api-key", "", "API key to send as Authorization: Bearer")
	fl.StringVar(&f.signingSecret, "signing-secret", "", "sign the requests with this whsec_ secret (Standard Webhooks headers), to test a verifier")
	fl.StringVar(&f.subscription, "subscription", "", "use a stored subscription's URL and API key")
	fl.StringVar(&f.eventType, "event", "", "event type: "+typeList())
	fl.StringVar(&f.prizeType, "prize-type", "", "prize type of a payout example (cash, free_spins, bonus_amount, deposit_bonus, catalog_item)")
	fl.BoolVar(&f.all, "all", false, "send every event and prize type")
	fl.StringVar(&f.scenario, "scenario", "", "error scenario: "+strings.Join(scenarios, ", "))
	fl.DurationVar(&f.timeout, "timeout", 30*time.Second, "how long to wait for each answer")
	cmd.MarkFlagsMutuallyExclusive("url", "subscription")
	cmd.MarkFlagsMutuallyExclusive("event", "all", "scenario")
	return cmd
}

func (f sendTestFlags) endpoint(ctx context.Context, g *globals) (delivery.Endpoint, error) {
	if f.subscription == "" {
		if f.url == "" {
			return delivery.Endpoint{}, errors.New("give --url or --subscription")
		}
		probe := subscriptions.Subscription{TenantID: "send-test", URL: f.url, EventTypes: event.Types[:1]}
		if err := probe.Validate(); err != nil {
			return delivery.Endpoint{}, fmt.Errorf("--url: %w", err)
		}
		ep := delivery.Endpoint{URL: f.url, APIKey: f.apiKey}
		if f.signingSecret != "" {
			key, err := subscriptions.DecodeSigningSecret(f.signingSecret)
			if err != nil {
				return delivery.Endpoint{}, fmt.Errorf("--signing-secret: %w", err)
			}
			ep.SigningKeys = [][]byte{key}
		}
		return ep, nil
	}
	sub, err := storedSubscription(ctx, g, f.subscription)
	if err != nil {
		return delivery.Endpoint{}, err
	}
	return delivery.EndpointOf(&sub, "", time.Now()), nil
}

func storedSubscription(ctx context.Context, g *globals, id string) (subscriptions.Subscription, error) {
	var sub subscriptions.Subscription
	err := withStore(g, func(s *subscriptions.Store) error {
		var err error
		sub, err = s.Get(ctx, id)
		return err
	})
	return sub, err
}

// probeCase is one request to send and what a well-behaved endpoint answers.
type probeCase struct {
	name   string
	body   []byte
	apiKey func(real string) string // the key to send, from the real one
	expect func(delivery.ProbeResult) bool
	want   string
}

func ok2xx(r delivery.ProbeResult) bool { return r.Err == nil && r.Status >= 200 && r.Status < 300 }

func exampleCases(t event.Type, prize string) []probeCase {
	var out []probeCase
	for _, ex := range event.Examples {
		if (t != "" && ex.Type != t) || (prize != "" && ex.PrizeType != prize) {
			continue
		}
		ev, err := event.Decode([]byte(ex.Domain))
		if err != nil {
			continue // the examples are tested; never happens
		}
		out = append(out, probeCase{name: ex.Name, body: ev.Body, apiKey: same, expect: ok2xx, want: "2xx"})
	}
	return out
}

func same(k string) string { return k }

func scenarioCase(name string) (probeCase, error) {
	valid := exampleCases(event.PrizePayoutSucceeded, "cash")[0].body
	status := func(code int) func(delivery.ProbeResult) bool {
		return func(r delivery.ProbeResult) bool { return r.Err == nil && r.Status == code }
	}
	switch name {
	case "invalid-json":
		return probeCase{name: name, body: valid[:len(valid)/2], apiKey: same, expect: status(400), want: "400"}, nil
	case "missing-field":
		body := strings.Replace(string(valid), `"event_type":"PRIZE_PAYOUT_SUCCEEDED",`, "", 1)
		return probeCase{name: name, body: []byte(body), apiKey: same, expect: status(400), want: "400"}, nil
	case "wrong-api-key":
		return probeCase{name: name, body: valid, apiKey: func(string) string { return "wrong-" + randomHex() },
			expect: status(401), want: "401"}, nil
	case "slow":
		return probeCase{name: name, body: valid, apiKey: same, want: "2xx within 30s",
			expect: func(r delivery.ProbeResult) bool { return ok2xx(r) && r.Duration < 30*time.Second }}, nil
	}
	return probeCase{}, fmt.Errorf("--scenario: %q is not one of %s", name, strings.Join(scenarios, ", "))
}

func randomHex() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// runProbes sends each case and prints a table; it fails when an answer is
// not the one the guide recommends.
func runProbes(ctx context.Context, out io.Writer, guard egress.Policy, ep delivery.Endpoint, cases []probeCase, timeout time.Duration) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TEST\tSTATUS\tLATENCY\tEXPECTED\tRESULT\tANSWER")
	bad := 0
	for _, c := range cases {
		probe := ep
		probe.APIKey = c.apiKey(ep.APIKey)
		probe.WebhookID = "msg_test_" + randomHex()
		r := delivery.Probe(ctx, guard, probe, c.body, timeout)
		verdict := "ok"
		if !c.expect(r) {
			verdict = "UNEXPECTED"
			bad++
		}
		answer := strings.Join(strings.Fields(r.Excerpt), " ")
		if r.Err != nil {
			answer = r.Err.Error()
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", c.name, r.Status, r.Duration.Round(time.Millisecond), c.want, verdict, answer)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d answers were not what the guide recommends", bad, len(cases))
	}
	return nil
}

func newSubsTestCmd(g *globals) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "test ID",
		Short: "Send every example and every error scenario of the guide to a stored subscription's endpoint",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.load()
			if err != nil {
				return err
			}
			sub, err := storedSubscription(cmd.Context(), g, args[0])
			if err != nil {
				return err
			}
			cases := exampleCases("", "")
			for _, name := range scenarios {
				c, _ := scenarioCase(name)
				cases = append(cases, c)
			}
			ep := delivery.EndpointOf(&sub, "", time.Now())
			return runProbes(cmd.Context(), g.stdout, cfg.Delivery.Egress(), ep, cases, timeout)
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "how long to wait for each answer")
	return cmd
}
