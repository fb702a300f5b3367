package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/unibo/webhookd/config"
	"github.com/unibo/webhookd/delivery"
	"github.com/unibo/webhookd/subscriptions"
)

// filterFlags are the flags dlq list and replay share.
type filterFlags struct {
	subscription string
	since, until string
}

func (f *filterFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.subscription, "subscription", "", "only this subscription's dead letters")
	cmd.Flags().StringVar(&f.since, "since", "", "only those dead-lettered at or after T (RFC 3339, or a duration ago such as 2h)")
	cmd.Flags().StringVar(&f.until, "until", "", "only those dead-lettered at or before T (RFC 3339, or a duration ago)")
}

func (f *filterFlags) filter(now time.Time) (delivery.DeadLetterFilter, error) {
	out := delivery.DeadLetterFilter{SubscriptionID: f.subscription}
	var err error
	if out.Since, err = delivery.ParseWhen(f.since, now); err != nil {
		return out, fmt.Errorf("--since: %w", err)
	}
	if out.Until, err = delivery.ParseWhen(f.until, now); err != nil {
		return out, fmt.Errorf("--until: %w", err)
	}
	return out, nil
}

func newDLQCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "dlq", Short: "Inspect the dead-letter topic"}
	var ff filterFlags
	var output string
	list := &cobra.Command{
		Use:   "list [--subscription ID] [--since T] [--until T]",
		Short: "List dead-lettered deliveries",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			printRecord, flush, err := deadLetterPrinter(cmd.OutOrStdout(), output)
			if err != nil {
				return err
			}
			cfg, err := g.load()
			if err != nil {
				return err
			}
			filter, err := ff.filter(time.Now())
			if err != nil {
				return err
			}
			n := 0
			skipped, err := delivery.ReadDeadLetters(cmd.Context(), cfg, filter, func(r delivery.Record) error {
				n++
				return printRecord(r)
			})
			if err != nil && n == 0 {
				return err // no header nor "0 dead letters" before the error
			}
			if ferr := flush(); err == nil {
				err = ferr
			}
			fmt.Fprintf(g.stderr, "%d dead letters", n)
			if skipped > 0 {
				fmt.Fprintf(g.stderr, " (%d unreadable records skipped)", skipped)
			}
			fmt.Fprintln(g.stderr)
			return err
		},
	}
	ff.add(list)
	list.Flags().StringVarP(&output, "output", "o", "table", "table, json (one record per line) or yaml (one document per record)")
	cmd.AddCommand(list)
	return cmd
}

// deadLetterPrinter returns how dlq list prints each record in the output
// format, and what it calls once the last is printed.
func deadLetterPrinter(out io.Writer, output string) (printRecord func(delivery.Record) error, flush func() error, err error) {
	switch output {
	case "table":
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "DEAD_AT\tSUBSCRIPTION\tEVENT_TYPE\tREQUEST_ID\tATTEMPTS\tSTATUS\tREASON\tERROR\tWEBHOOK_ID")
		return func(r delivery.Record) error {
			_, err := fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n", r.DeadAt.UTC().Format(time.RFC3339),
				r.SubscriptionID, r.EventType, dash(r.RequestID), r.Attempts, r.LastStatus, r.Reason, dash(r.LastError), r.WebhookID)
			return err
		}, tw.Flush, nil
	case "json":
		return func(r delivery.Record) error {
			b, err := json.Marshal(r)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(out, string(b))
			return err
		}, func() error { return nil }, nil
	case "yaml":
		enc := yaml.NewEncoder(out)
		enc.SetIndent(2)
		return func(r delivery.Record) error {
			doc, err := yamlOf(r)
			if err != nil {
				return err
			}
			return enc.Encode(doc)
		}, enc.Close, nil
	}
	return nil, nil, fmt.Errorf("-o must be table, json or yaml, got %q", output)
}

// yamlOf is v as YAML with its JSON field names and order (the body
// included, as nested YAML), in block style and quoting only what needs it.
func yamlOf(v any) (*yaml.Node, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil { // JSON is YAML
		return nil, err
	}
	plainStyle(&doc)
	return &doc, nil
}

// plainStyle drops the JSON's flow style and quotes: the encoder quotes again
// any string that would otherwise read as another type.
func plainStyle(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		plainStyle(c)
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return strings.ReplaceAll(s, "\t", " ")
}

func newReplayCmd(g *globals) *cobra.Command {
	var ff filterFlags
	cmd := &cobra.Command{
		Use:   "replay --subscription ID [--since T] [--until T]",
		Short: "Redeliver dead-lettered deliveries to the subscription's current endpoint and API key",
		Long: "replay reads the dead-letter topic and POSTs each matching delivery once more, with its original body\n" +
			"and webhook-id (so partners deduplicate a repeated replay), to the subscription's current URL and API\n" +
			"key. It reports counts as it goes and leaves the dead-letter topic as it is: a replay is safe to repeat.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if ff.subscription == "" {
				return fmt.Errorf("--subscription is required")
			}
			cfg, err := g.load()
			if err != nil {
				return err
			}
			filter, err := ff.filter(time.Now())
			if err != nil {
				return err
			}
			return replay(cmd.Context(), g, cfg, filter)
		},
	}
	ff.add(cmd)
	return cmd
}

func replay(ctx context.Context, g *globals, cfg config.Config, filter delivery.DeadLetterFilter) error {
	store, closeStore, err := subscriptions.OpenStore(cfg)
	if err != nil {
		return err
	}
	defer func() { _ = closeStore() }()
	var total, failed int
	sum, err := delivery.Replay(ctx, cfg, store, filter, func(r delivery.Record, res delivery.Result) {
		total++
		if !res.OK() {
			failed++
			fmt.Fprintf(g.stderr, "  %s (%s %s): %v\n", r.WebhookID, r.EventType, dash(r.RequestID), res.Err)
		}
		if total%100 == 0 {
			fmt.Fprintf(g.stderr, "replaying: %d so far, %d delivered, %d failed\n", total, total-failed, failed)
		}
	})
	if err != nil && sum.Total == 0 {
		return err // nothing was replayed: no summary to print
	}
	fmt.Fprintf(g.stdout, "replayed %d: %d delivered, %d failed\n", sum.Total, sum.Delivered, sum.Failed)
	if err != nil {
		return err
	}
	if sum.Failed > 0 {
		return fmt.Errorf("%d of %d deliveries failed again; they stay in the dead-letter topic", sum.Failed, sum.Total)
	}
	return nil
}
