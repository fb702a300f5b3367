package main

import (
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/unibo/webhookd/config"
	"github.com/unibo/webhookd/consumer"
	"github.com/unibo/webhookd/delivery"
	"github.com/unibo/webhookd/podstate"
	"github.com/unibo/webhookd/subscriptions"
)

func newStatusCmd(g *globals) *cobra.Command {
	var since time.Duration
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the consumer groups' lag per partition, the subscription table, each partner endpoint's limit, rate, pause and deferred backlog, and recent dead letters",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.load()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			out := g.stdout
			for _, grp := range []struct {
				name   string
				topics []string
			}{
				{cfg.Kafka.GroupID, cfg.Kafka.Topics},
				{cfg.Kafka.GroupID + ".retry", delivery.RetryTopics(cfg.Delivery.Retry.Topic)},
			} {
				lags, err := consumer.GroupLag(ctx, cfg.Kafka, grp.name, grp.topics)
				if err != nil {
					return err
				}
				printLag(out, grp.name, lags)
			}

			store, closeStore, err := subscriptions.OpenStore(cfg)
			if err != nil {
				return err
			}
			defer func() { _ = closeStore() }()
			snap, err := store.Load(ctx)
			if err != nil {
				fmt.Fprintf(out, "\nSubscriptions: the table cannot be loaded: %v\n", err) // unreachable, or sealed with a key not configured
			} else {
				enabled := 0
				for _, s := range snap.Subscriptions {
					if s.Enabled {
						enabled++
					}
				}
				fmt.Fprintf(out, "\nSubscriptions: %d (%d enabled), version %d, %d unreadable\n",
					len(snap.Subscriptions), enabled, snap.Version, len(snap.Skipped))
			}
			printEndpoints(cmd, out, podstate.NewBoard(store.Redis(), cfg.Redis.KeyPrefix))
			return printDeadLetters(cmd, out, cfg, since)
		},
	}
	cmd.Flags().DurationVar(&since, "since", time.Hour, "window of the recent dead-letter counts")
	return cmd
}

// printEndpoints shows each partner endpoint's state as the running
// workers last published it, summed over them.
func printEndpoints(cmd *cobra.Command, out io.Writer, board *podstate.Board) {
	reports, err := board.Read(cmd.Context())
	if err != nil {
		fmt.Fprintf(out, "\nEndpoints: cannot be read: %v\n", err)
		return
	}
	eps := podstate.Merge(reports)
	fmt.Fprintf(out, "\nEndpoints: %d, as %d running worker(s) published them in the last %s\n", len(eps), len(reports), podstate.Stale)
	if len(eps) == 0 {
		return
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ENDPOINT\tLIMIT\tIN FLIGHT\tQUEUED\tRATE/S\tPAUSED UNTIL\tCIRCUIT\tSILENT\tDEFERRED BACKLOG\tBACKLOG AGE")
	for _, e := range eps {
		rate, paused := "-", "-"
		if e.Rate > 0 {
			rate = fmt.Sprintf("%.0f", e.Rate)
		}
		if !e.PausedUntil.IsZero() {
			paused = e.PausedUntil.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%d/%d\t%d\t%d\t%s\t%s\t%s\t%v\t%d\t%s\n", e.Endpoint, e.Limit, e.Ceiling, e.InFlight, e.Queued,
			rate, paused, e.Circuit, e.Silent, max(e.Deferred-e.Returned, 0), e.DeferredAge.Round(time.Second))
	}
	_ = tw.Flush()
}

func printLag(out io.Writer, group string, lags []consumer.PartitionLag) {
	fmt.Fprintf(out, "\nConsumer group %s\n", group)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tEND\tCOMMITTED\tLAG")
	var total int64
	for _, l := range lags {
		committed := fmt.Sprint(l.Committed)
		if l.Committed < 0 {
			committed = "-"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%d\n", l.Topic, l.Partition, l.End, committed, l.Lag)
		total += l.Lag
	}
	_ = tw.Flush()
	fmt.Fprintf(out, "total lag %d\n", total)
}

func printDeadLetters(cmd *cobra.Command, out io.Writer, cfg config.Config, since time.Duration) error {
	bySub := map[string]int{}
	n := 0
	_, err := delivery.ReadDeadLetters(cmd.Context(), cfg, delivery.DeadLetterFilter{Since: time.Now().Add(-since)},
		func(r delivery.Record) error {
			n++
			bySub[r.SubscriptionID]++
			return nil
		})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nDead letters in the last %s: %d\n", since, n)
	ids := make([]string, 0, len(bySub))
	for id := range bySub {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return bySub[ids[i]] > bySub[ids[j]] })
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for _, id := range ids {
		fmt.Fprintf(tw, "  %s\t%d\n", id, bySub[id])
	}
	return tw.Flush()
}
