package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/unibo/webhookd/app"
	"github.com/unibo/webhookd/config"
)

// globals are the flags every subcommand shares.
type globals struct {
	configPath string
	stdout     io.Writer
	stderr     io.Writer
}

// load parses and validates the configuration once for a command, and warns
// on stderr of every WEBHOOKD_* variable that names no option: a misspelt
// WEBHOOKD_REDIS_DATABASE would otherwise send the command to database 0
// without a word. (The worker logs these instead: runWorker.)
func (g *globals) load() (config.Config, error) {
	cfg, err := config.Load(g.configPath)
	for _, u := range config.UnknownEnv(os.Environ()) {
		fmt.Fprintf(g.stderr, "warning: %v\n", u)
	}
	return cfg, err
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
		// go-redis logs every failed pool dial on stderr ("failed to dial
		// after 5 attempts"), eight lines before a CLI command's one error
		// when Redis is down: the commands report that error themselves. The
		// worker routes these messages into its own log instead (runWorker).
		PersistentPreRun: func(*cobra.Command, []string) { redis.SetLogger(app.RedisLogger{Log: zap.NewNop()}) },
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runWorker(cmd.Context(), g)
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVarP(&g.configPath, "config", "c", "", "YAML config file (then WEBHOOKD_* env vars override it)")
	root.AddCommand(newSubscriptionsCmd(g), newDemoCmd(g), newReceiverCmd(g), newConfigCmd(g), newDLQCmd(g), newReplayCmd(g), newSendTestCmd(g), newStatusCmd(g))
	refuseUnknownSubcommands(root)
	return root
}

// refuseUnknownSubcommands makes every command that has subcommands fail on
// an argument that names none of them, suggesting the closest, instead of
// cobra's default for a command without a Run of its own: the help, and exit
// status 0, which lets a script's typo pass for success. Such a command with
// no argument still prints its help.
func refuseUnknownSubcommands(cmd *cobra.Command) {
	if !cmd.HasSubCommands() {
		return
	}
	cmd.Args = unknownSubcommand
	if !cmd.Runnable() {
		cmd.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
		cmd.DisableFlagsInUseLine = true // its usage is "[command]", not "[flags]"
	}
	for _, sub := range cmd.Commands() {
		refuseUnknownSubcommands(sub)
	}
}

// unknownSubcommand is the Args of a command with subcommands: any argument
// left is a misspelt subcommand.
func unknownSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	// The closest names only: a one-letter slip ("lst") suggests list, not
	// also get and test, two edits away.
	var suggestions []string
	for _, distance := range []int{1, 2} {
		cmd.SuggestionsMinimumDistance = distance
		if suggestions = cmd.SuggestionsFor(args[0]); len(suggestions) > 0 {
			break
		}
	}
	if len(suggestions) > 0 {
		msg += "\n\nDid you mean this?\n\t" + strings.Join(suggestions, "\n\t") + "\n"
	}
	return errors.New(msg + "\nRun '" + cmd.CommandPath() + " --help' for its commands.")
}
