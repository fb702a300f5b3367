package main

import (
	"fmt"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/unibo/webhookd/delivery"
	"github.com/unibo/webhookd/embedded"
	"github.com/unibo/webhookd/subscriptions"
)

func newReceiverCmd(g *globals) *cobra.Command {
	var addr, apiKey, signingSecret string
	cmd := &cobra.Command{
		Use:   "receiver [--addr A] [--api-key K] [--signing-secret whsec_...]",
		Short: "Run a sample partner endpoint that prints every webhook it receives and answers as the guide recommends",
		Long: "receiver is the Webhook Integration Guide's example endpoint: it prints every request (headers, then\n" +
			"the body exactly as received) on stdout and answers 401 without the right API key (--api-key) or\n" +
			"signature (--signing-secret), 400 for a body that is not JSON or has no event_type, and 200 otherwise,\n" +
			"so `webhookd send-test --scenario ...` and `webhookd subscriptions test` pass against it.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := embedded.ReceiverOptions{APIKey: apiKey}
			if signingSecret != "" {
				key, err := subscriptions.DecodeSigningSecret(signingSecret)
				if err != nil {
					return fmt.Errorf("--signing-secret: %w", err)
				}
				opts.Verify = func(h http.Header, body []byte) error {
					return delivery.VerifySignature(key, h, body, time.Now())
				}
			}
			r, err := embedded.ListenReceiver(addr, g.stdout, opts)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stderr, "receiver listening on %s (POST webhooks to any path); Ctrl-C to stop\n", r.Addr())
			<-cmd.Context().Done()
			return r.Close()
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:9000", "listen address")
	cmd.Flags().StringVar(&apiKey, "api-key", "", "require Authorization: Bearer <key> (401 otherwise)")
	cmd.Flags().StringVar(&signingSecret, "signing-secret", "", "require a valid Standard Webhooks signature made with this whsec_ secret (401 otherwise)")
	return cmd
}
