package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/unibo/webhookd/config"
)

// globals are the flags every subcommand shares.
type globals struct {
	configPath string
	stdout     io.Writer
	stderr     io.Writer
}

// load parses and validates the configuration once for a command.
func (g *globals) load() (config.Config, error) {
	return config.Load(g.configPath)
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "webhookd",
		Short: "Deliver prize payout and campaign participation events to partners' webhooks",
		Long: "webhookd consumes domain events from Kafka, matches them against the subscription table in Redis\n" +
			"and POSTs the Webhook Integration Guide's payload to every matching partner endpoint.\n" +
			"With no subcommand it runs the worker.",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runWorker(cmd.Context(), g)
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVarP(&g.configPath, "config", "c", "", "YAML config file (then WEBHOOKD_* env vars override it)")
	root.AddCommand(newSubscriptionsCmd(g), newDemoCmd(g), newReceiverCmd(g), newConfigCmd(g), newDLQCmd(g), newReplayCmd(g), newSendTestCmd(g), newStatusCmd(g))
	return root
}
