package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/unibo/webhookd/embedded"
)

func newReceiverCmd(g *globals) *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   "receiver",
		Short: "Run a sample partner endpoint that prints every webhook it receives and answers 200",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := embedded.ListenReceiver(addr, g.stdout)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stderr, "receiver listening on %s (POST webhooks to any path); Ctrl-C to stop\n", addr)
			<-cmd.Context().Done()
			return r.Close()
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:9000", "listen address")
	return cmd
}
