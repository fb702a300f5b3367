package main

import (
	"context"
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
			guard := cfg.Delivery.Egress()
			ep, err := f.endpoint(cmd.Context(), g, guard)
			if err != nil {
				return err
			}
			var cases []delivery.ProbeCase
			switch {
			case f.scenario != "":
				c, err := delivery.ScenarioCase(f.scenario)
				if err != nil {
					return fmt.Errorf("--scenario: %w", err)
				}
				cases = []delivery.ProbeCase{c}
			case f.all:
				cases = delivery.ExampleCases("", "")
			case f.eventType != "":
				if _, err := event.ParseType(f.eventType); err != nil {
					return fmt.Errorf("--event: %w", err)
				}
				cases = delivery.ExampleCases(event.Type(f.eventType), f.prizeType)
				if len(cases) == 0 {
					return fmt.Errorf("--prize-type: the guide has no %s example with prize type %q", f.eventType, f.prizeType)
				}
			default:
				return errors.New("give --event TYPE, --all or --scenario " + strings.Join(delivery.ProbeScenarios(), "|"))
			}
			return runProbes(cmd.Context(), g.stdout, guard, ep, cases, f.timeout)
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
	fl.StringVar(&f.scenario, "scenario", "", "error scenario: "+strings.Join(delivery.ProbeScenarios(), ", "))
	fl.DurationVar(&f.timeout, "timeout", 30*time.Second, "how long to wait for each answer")
	cmd.MarkFlagsMutuallyExclusive("url", "subscription")
	cmd.MarkFlagsMutuallyExclusive("event", "all", "scenario")
	return cmd
}

// endpoint is the endpoint to probe. A --url is vetted as subscriptions add
// vets it, so both accept and refuse the same URLs with the same words.
func (f sendTestFlags) endpoint(ctx context.Context, g *globals, guard egress.Policy) (delivery.Endpoint, error) {
	if f.subscription == "" {
		if f.url == "" {
			return delivery.Endpoint{}, errors.New("give --url or --subscription")
		}
		probe := subscriptions.Subscription{TenantID: "send-test", URL: f.url, EventTypes: event.Types[:1]}
		if err := probe.Validate(); err != nil {
			return delivery.Endpoint{}, fmt.Errorf("--url: %w", err)
		}
		if err := guard.CheckURL(f.url); err != nil {
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

// runProbes sends each case and prints a table; it fails when an answer is
// not the one the guide recommends.
func runProbes(ctx context.Context, out io.Writer, guard egress.Policy, ep delivery.Endpoint, cases []delivery.ProbeCase, timeout time.Duration) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TEST\tSTATUS\tLATENCY\tEXPECTED\tRESULT\tANSWER")
	bad := 0
	for _, o := range delivery.RunProbes(ctx, delivery.ProbeWith(guard), ep, cases, timeout) {
		verdict := "ok"
		if !o.OK {
			verdict = "UNEXPECTED"
			bad++
		}
		answer := strings.Join(strings.Fields(o.Excerpt), " ")
		if o.Err != nil {
			answer = o.Err.Error()
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", o.Case, o.Status, o.Duration.Round(time.Millisecond), o.Want, verdict, answer)
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
			cases := delivery.AllProbeCases()
			ep := delivery.EndpointOf(&sub, "", time.Now())
			return runProbes(cmd.Context(), g.stdout, cfg.Delivery.Egress(), ep, cases, timeout)
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "how long to wait for each answer")
	return cmd
}
