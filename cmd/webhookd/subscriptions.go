package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/unibo/webhookd/event"
	"github.com/unibo/webhookd/subscriptions"
)

func newSubscriptionsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "subscriptions",
		Aliases: []string{"subs"},
		Short:   "Manage the subscription table in Redis",
		Long: "Every change is one Redis transaction; running workers pick it up within subscriptions.poll_interval.\n" +
			"API keys are masked in every output unless --reveal-secrets is given.",
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(
		newSubsAddCmd(g), newSubsListCmd(g), newSubsGetCmd(g), newSubsUpdateCmd(g),
		newSubsEnableCmd(g, true), newSubsEnableCmd(g, false), newSubsDeleteCmd(g), newSubsApplyCmd(g),
		newSubsTestCmd(g), newSubsRotateSecretCmd(g), newSubsReencryptCmd(g),
	)
	return cmd
}

// withStore loads the configuration, connects to Redis and runs fn.
func withStore(g *globals, fn func(*subscriptions.Store) error) error {
	cfg, err := g.load()
	if err != nil {
		return err
	}
	store, closeStore, err := subscriptions.OpenStore(cfg)
	if err != nil {
		return err
	}
	defer func() { _ = closeStore() }()
	return fn(store)
}

// fieldFlags maps a subscription field to the flag that sets it.
var fieldFlags = map[string]string{
	"id": "--id", "tenant_id": "--tenant", "url": "--url", "event_types": "--events",
	"api_key": "--api-key", "campaign_ids": "--campaigns", "signing_secret": "--signing-secret",
}

// withFlag names the flag to fix when err is about a field.
func withFlag(err error) error {
	var fe *subscriptions.FieldError
	if errors.As(err, &fe) && fieldFlags[fe.Field] != "" {
		return fmt.Errorf("%w (flag %s)", err, fieldFlags[fe.Field])
	}
	return err
}

// trimList trims every element; blanks stay, so validation can report them.
func trimList(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = strings.TrimSpace(s)
	}
	return out
}

func eventTypes(in []string) []event.Type {
	out := make([]event.Type, 0, len(in))
	for _, s := range trimList(in) {
		out = append(out, event.Type(s))
	}
	return out
}

func newSubsAddCmd(g *globals) *cobra.Command {
	var sub subscriptions.Subscription
	var events, campaigns []string
	var disabled, generate bool
	cmd := &cobra.Command{
		Use:   "add --tenant T --url U --events E1,E2",
		Short: "Add a subscription and print its id",
		Long: "add prints the new id on stdout. With --generate-signing-secret the generated secret is printed\n" +
			"once on stderr, for the partner's verifier; `get ID --reveal-secrets` shows it again.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sub.EventTypes = eventTypes(events)
			sub.CampaignIDs = trimList(campaigns)
			sub.Enabled = !disabled
			if generate {
				sub.SigningSecret = subscriptions.NewSigningSecret()
			}
			if err := sub.Validate(); err != nil {
				return withFlag(fmt.Errorf("invalid subscription: %w", err))
			}
			return withStore(g, func(s *subscriptions.Store) error {
				added, err := s.Add(cmd.Context(), sub)
				if errors.Is(err, subscriptions.ErrExists) {
					return fmt.Errorf("%w (change it with: webhookd subscriptions update %s ..., or delete it first)", err, sub.ID)
				}
				if err != nil {
					return withFlag(err)
				}
				if generate {
					fmt.Fprintf(cmd.ErrOrStderr(), "signing secret (give it to the partner): %s\n", added.SigningSecret)
				}
				_, err = fmt.Fprintln(cmd.OutOrStdout(), added.ID)
				return err
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&sub.TenantID, "tenant", "", "tenant whose events are delivered (required)")
	f.StringVar(&sub.URL, "url", "", "absolute http(s) URL of the partner's webhook (required)")
	f.StringSliceVar(&events, "events", nil, "event types, comma-separated: "+typeList()+" (required)")
	f.StringVar(&sub.APIKey, "api-key", "", "sent to the partner as Authorization: Bearer <key>")
	f.IntVar(&sub.MaxAttempts, "max-attempts", 0, "attempts per delivery for this subscription, retries included (default: delivery.retry.max_attempts)")
	f.StringSliceVar(&campaigns, "campaigns", nil, "deliver only these campaigns' events (default all)")
	f.BoolVar(&disabled, "disabled", false, "add the subscription disabled")
	f.StringVar(&sub.SigningSecret, "signing-secret", "", "sign deliveries (Standard Webhooks) with this whsec_ secret")
	f.BoolVar(&generate, "generate-signing-secret", false, "sign deliveries with a new random secret, printed once on stderr")
	cmd.MarkFlagsMutuallyExclusive("signing-secret", "generate-signing-secret")
	f.StringVar(&sub.ID, "id", "", "subscription id (default a random sub_… id)")
	return cmd
}

func typeList() string {
	names := make([]string, len(event.Types))
	for i, t := range event.Types {
		names[i] = string(t)
	}
	return strings.Join(names, ", ")
}

func newSubsListCmd(g *globals) *cobra.Command {
	var tenant, output string
	var reveal bool
	cmd := &cobra.Command{
		Use:   "list [--tenant T] [-o table|json|yaml]",
		Short: "List subscriptions by id (-o yaml --reveal-secrets writes a file apply -f accepts)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" && output != "yaml" {
				return fmt.Errorf("-o must be table, json or yaml, got %q", output)
			}
			return withStore(g, func(s *subscriptions.Store) error {
				snap, err := s.Load(cmd.Context())
				if err != nil {
					return err
				}
				for _, c := range snap.Skipped {
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: %v\n", c)
				}
				// By id, whatever the tenants and creation times: two listings
				// of one table, or of a table and its restored backup (whose
				// entries are all created anew), diff cleanly.
				subs := snap.Subscriptions
				slices.SortFunc(subs, func(a, b subscriptions.Subscription) int { return strings.Compare(a.ID, b.ID) })
				if tenant != "" {
					subs = slices.DeleteFunc(subs, func(s subscriptions.Subscription) bool { return s.TenantID != tenant })
				}
				if !reveal {
					for i := range subs {
						subs[i] = subs[i].Masked()
					}
				}
				return printList(cmd.OutOrStdout(), output, subs, reveal)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&tenant, "tenant", "", "only this tenant's subscriptions")
	f.StringVarP(&output, "output", "o", "table", "table, json or yaml (the apply file format)")
	f.BoolVar(&reveal, "reveal-secrets", false, "print API keys and signing secrets in clear (for a backup: -o yaml --reveal-secrets > backup.yaml)")
	return cmd
}

func printList(w io.Writer, output string, subs []subscriptions.Subscription, revealed bool) error {
	switch output {
	case "json":
		return printJSON(w, subs)
	case "yaml":
		if !revealed && slices.ContainsFunc(subs, func(s subscriptions.Subscription) bool { return s.APIKey != "" || s.SigningSecret != "" }) {
			fmt.Fprintln(w, "# API keys and signing secrets are masked: apply refuses this file. Use --reveal-secrets for a backup.")
		}
		return subscriptions.WriteFile(w, subs)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTENANT\tENABLED\tEVENTS\tCAMPAIGNS\tURL\tAPI_KEY")
	for _, s := range subs {
		events := make([]string, len(s.EventTypes))
		for i, t := range s.EventTypes {
			events[i] = string(t)
		}
		campaigns, key := strings.Join(s.CampaignIDs, ","), s.APIKey
		if campaigns == "" {
			campaigns = "<all>"
		}
		if key == "" {
			key = "<none>"
		}
		fmt.Fprintf(tw, "%s\t%s\t%t\t%s\t%s\t%s\t%s\n", s.ID, s.TenantID, s.Enabled, strings.Join(events, ","), campaigns, s.URL, key)
	}
	return tw.Flush()
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newSubsGetCmd(g *globals) *cobra.Command {
	var output string
	var reveal bool
	cmd := &cobra.Command{
		Use:   "get ID [-o json|yaml]",
		Short: "Print one subscription",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "json" && output != "yaml" {
				return fmt.Errorf("-o must be json or yaml, got %q", output)
			}
			return withStore(g, func(s *subscriptions.Store) error {
				sub, err := s.Get(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if !reveal {
					sub = sub.Masked()
				}
				if output == "json" {
					return printJSON(cmd.OutOrStdout(), sub)
				}
				enc := yaml.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent(2)
				if err := enc.Encode(sub); err != nil {
					return err
				}
				return enc.Close()
			})
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "json", "json or yaml")
	cmd.Flags().BoolVar(&reveal, "reveal-secrets", false, "print the API key and signing secrets in clear")
	return cmd
}

// updateFlags are the flags of update that change something.
var updateFlags = []string{"url", "events", "api-key", "clear-api-key", "campaigns", "clear-campaigns", "tenant", "max-attempts", "signing-secret", "clear-signing-secret"}

func newSubsUpdateCmd(g *globals) *cobra.Command {
	var next subscriptions.Subscription
	var events, campaigns []string
	var clearKey, clearCampaigns, clearSecret bool
	cmd := &cobra.Command{
		Use: "update ID [--url U] [--events E1,E2] [--api-key K | --clear-api-key] [--campaigns C1,C2 | --clear-campaigns] [--tenant T]\n" +
			"          [--max-attempts N] [--signing-secret whsec_... | --clear-signing-secret]",
		Short: "Change the given fields of a subscription; the others keep their values",
		Long: "update applies the rules of the admin API's PATCH (subscriptions.Patch): only the flags given change.\n" +
			"--signing-secret replaces the secret at once and ends a rotation in progress (the previous secret stops\n" +
			"signing too); --clear-signing-secret stops signing. rotate-secret keeps the old secret valid for a while.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			changed := cmd.Flags().Changed
			if !slices.ContainsFunc(updateFlags, changed) {
				return errors.New("nothing to update: give at least one of --" + strings.Join(updateFlags, ", --"))
			}
			var p subscriptions.Patch
			if changed("tenant") {
				p.TenantID = &next.TenantID
			}
			if changed("url") {
				p.URL = &next.URL
			}
			if changed("events") {
				types := eventTypes(events)
				p.EventTypes = &types
			}
			if changed("api-key") {
				p.APIKey = &next.APIKey
			}
			if clearKey {
				p.APIKey = new(string)
			}
			if changed("campaigns") {
				ids := trimList(campaigns)
				p.CampaignIDs = &ids
			}
			if clearCampaigns {
				p.CampaignIDs = &[]string{}
			}
			if changed("max-attempts") {
				p.MaxAttempts = &next.MaxAttempts
			}
			if changed("signing-secret") {
				p.SigningSecret = &next.SigningSecret
			}
			if clearSecret {
				p.SigningSecret = new(string)
			}
			return withStore(g, func(s *subscriptions.Store) error {
				sub, err := s.Update(cmd.Context(), args[0], p.Change)
				if err != nil {
					return withFlag(err)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "updated %s\n", sub.ID)
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&next.TenantID, "tenant", "", "move the subscription to this tenant")
	f.StringVar(&next.URL, "url", "", "new webhook URL")
	f.StringSliceVar(&events, "events", nil, "new event types, comma-separated (replaces the list)")
	f.StringVar(&next.APIKey, "api-key", "", "new API key")
	f.BoolVar(&clearKey, "clear-api-key", false, "remove the API key")
	f.StringSliceVar(&campaigns, "campaigns", nil, "new campaign filter, comma-separated (replaces the list)")
	f.BoolVar(&clearCampaigns, "clear-campaigns", false, "remove the campaign filter: deliver every campaign")
	f.IntVar(&next.MaxAttempts, "max-attempts", 0, "attempts per delivery, retries included; 0 = delivery.retry.max_attempts")
	f.StringVar(&next.SigningSecret, "signing-secret", "", "replace the signing secret at once, ending any rotation: the previous secret stops signing too (rotate-secret keeps the old one valid for a while)")
	f.BoolVar(&clearSecret, "clear-signing-secret", false, "stop signing deliveries")
	cmd.MarkFlagsMutuallyExclusive("api-key", "clear-api-key")
	cmd.MarkFlagsMutuallyExclusive("signing-secret", "clear-signing-secret")
	cmd.MarkFlagsMutuallyExclusive("campaigns", "clear-campaigns")
	return cmd
}

func newSubsEnableCmd(g *globals, enable bool) *cobra.Command {
	use, short, done := "enable", "Resume deliveries to a subscription", "enabled"
	if !enable {
		use, short, done = "disable", "Stop deliveries to a subscription, keeping it", "disabled"
	}
	return &cobra.Command{
		Use:   use + " ID",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(g, func(s *subscriptions.Store) error {
				_, err := s.Update(cmd.Context(), args[0], func(sub *subscriptions.Subscription) error {
					sub.Enabled = enable
					return nil
				})
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "%s %s\n", done, args[0])
				return nil
			})
		},
	}
}

func newSubsDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a subscription",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(g, func(s *subscriptions.Store) error {
				if err := s.Delete(cmd.Context(), args[0]); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "deleted %s\n", args[0])
				return nil
			})
		},
	}
}

func newSubsApplyCmd(g *globals) *cobra.Command {
	var path string
	var dryRun, prune bool
	cmd := &cobra.Command{
		Use:   "apply -f FILE [--dry-run] [--prune]",
		Short: "Make the table equal to a YAML file: add, update and, with --prune, delete (- reads stdin)",
		Long: "apply validates the whole file first and writes nothing when any entry is invalid. Entries without an\n" +
			"id get one derived from tenant_id and url, so applying the same file twice changes nothing.\n\n" +
			"Subscriptions in Redis but not in the file are deleted only with --prune (or when you confirm on a\n" +
			"terminal); otherwise apply lists them, writes nothing and exits 1. --dry-run prints the plan (adds,\n" +
			"updates with the fields that change, deletes, secrets removed) and writes nothing; it exits as the\n" +
			"apply would: 1, listing what --prune would delete, when the apply would be refused. The summary\n" +
			"names every API key and signing secret the apply removes.\n\n" +
			"Exit status: 0 applied (with --dry-run: the apply would go ahead); 1 an invalid file or entry, a refused\n" +
			"apply (deletions without --prune, a deletion not confirmed), or Redis unreachable.\n\n" +
			"Backup and restore: `list -o yaml --reveal-secrets > backup.yaml`, then `apply -f backup.yaml`. Without\n" +
			"--reveal-secrets, API keys and signing secrets are masked and apply refuses the file.\n\n" +
			"subscriptions:\n" +
			"  - id: partner-a                      # optional\n" +
			"    tenant_id: acme\n" +
			"    url: https://hooks.acme.example/prizes\n" +
			"    event_types: [PRIZE_PAYOUT_SUCCEEDED, PRIZE_PAYOUT_FAILED]\n" +
			"    api_key: s3cret                    # optional\n" +
			"    campaign_ids: [summer]             # optional, default every campaign\n" +
			"    enabled: true                      # optional, default true\n" +
			"    max_attempts: 5                    # optional, default delivery.retry.max_attempts\n" +
			"    signing_secret: whsec_...          # optional: sign deliveries (Standard Webhooks)\n" +
			"    previous_signing_secret: whsec_... # optional, during a rotation: also signs...\n" +
			"    previous_signing_secret_expires_at: 2025-06-02T10:00:00Z  # ...until then",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in, name := cmd.InOrStdin(), "stdin"
			if path != "-" {
				name = path
				f, err := os.Open(path)
				if err != nil {
					return err
				}
				defer func() { _ = f.Close() }()
				in = f
			}
			file, err := subscriptions.ReadFile(in)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			desired := file.Subscriptions
			// An entry the store refuses (the egress policy) is named as the
			// file's own errors are: the file, then the entry and its line.
			located := func(err error) error {
				var entry *subscriptions.EntryError
				if !errors.As(err, &entry) {
					return err
				}
				return fmt.Errorf("%s: %w", name, file.Locate(err))
			}
			stdout, progress := cmd.OutOrStdout(), cmd.ErrOrStderr()
			return withStore(g, func(s *subscriptions.Store) error {
				if dryRun {
					res, err := s.ApplyWith(cmd.Context(), desired, subscriptions.ApplyOptions{DryRun: true, Prune: prune})
					if err != nil {
						return located(err)
					}
					fmt.Fprintf(stdout, "%s: %s; plan:\n", name, subscriptions.Many(len(desired)))
					printChanges(stdout, res)
					if res.Refused != nil {
						// What --prune would do, then why this apply would not.
						fmt.Fprintf(stdout, "dry run, nothing written: with --prune, apply would have %s\n", res.Counts())
						return fmt.Errorf("%s: dry run: without --prune apply would be refused and write nothing: %s", name, refusal(res.Refused.IDs))
					}
					_, err = fmt.Fprintln(stdout, res)
					return err
				}
				opts := subscriptions.ApplyOptions{Prune: prune}
				res, err := s.ApplyWith(cmd.Context(), desired, opts)
				var refused *subscriptions.DeleteRefusedError
				if errors.As(err, &refused) && !refused.Unconfirmed {
					// The file cannot be both stdin and the answer.
					if path == "-" || !isTerminal(cmd.InOrStdin()) {
						return fmt.Errorf("%s: apply refused, nothing written: %s (--dry-run shows the whole plan)", name, refusal(refused.IDs))
					}
					if !confirmDeletes(cmd.InOrStdin(), progress, name, refused.IDs) {
						return fmt.Errorf("%s: not confirmed; nothing written (--prune deletes without asking)", name)
					}
					opts.Prune, opts.PruneOnly = true, refused.IDs
					res, err = s.ApplyWith(cmd.Context(), desired, opts)
				}
				if err != nil {
					return located(err)
				}
				// Progress on stderr, the summary alone on stdout.
				fmt.Fprintf(progress, "%s: %s, applied in one transaction:\n", name, subscriptions.Many(len(desired)))
				printChanges(progress, res)
				_, err = fmt.Fprintln(stdout, res)
				return err
			})
		},
	}
	cmd.Flags().StringVarP(&path, "file", "f", "", "YAML file, - for stdin (required)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print what apply would add, update (with the fields that change) and delete, and the secrets it would remove; write nothing")
	cmd.Flags().BoolVar(&prune, "prune", false, "delete the subscriptions absent from the file (without it apply refuses, or asks on a terminal)")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

// refusal says which deletions refused an apply and how to go ahead.
func refusal(ids []string) string {
	them := "them"
	if len(ids) == 1 {
		them = "it"
	}
	return fmt.Sprintf("it would delete %s absent from the file (%s). Re-run with --prune to delete %s, or add %s to the file",
		subscriptions.Many(len(ids)), strings.Join(ids, ", "), them, them)
}

// printChanges writes one line per change of an apply.
func printChanges(w io.Writer, res subscriptions.ApplyResult) {
	for _, l := range res.Lines() {
		fmt.Fprintf(w, "  %s\n", l)
	}
}

// isTerminal reports whether r is a terminal a user can answer a question
// on: a character device other than /dev/null (what scripts and cron give).
func isTerminal(r io.Reader) bool {
	f, ok := r.(interface{ Stat() (os.FileInfo, error) })
	if !ok {
		return false
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err != nil || !os.SameFile(fi, null)
}

// confirmDeletes asks on the terminal whether to delete ids; only "yes"
// confirms.
func confirmDeletes(in io.Reader, out io.Writer, name string, ids []string) bool {
	verb := "are"
	if len(ids) == 1 {
		verb = "is"
	}
	fmt.Fprintf(out, "%s in Redis %s not in %s and would be deleted:\n", subscriptions.Many(len(ids)), verb, name)
	for _, id := range ids {
		fmt.Fprintf(out, "  %s\n", id)
	}
	fmt.Fprint(out, "Delete them? Type yes to delete, anything else to stop: ")
	answer, err := bufio.NewReader(in).ReadString('\n')
	if err != nil {
		fmt.Fprintln(out) // no answer: end the question's line
	}
	return strings.TrimSpace(answer) == "yes"
}

func newSubsRotateSecretCmd(g *globals) *cobra.Command {
	var secret string
	var grace time.Duration
	cmd := &cobra.Command{
		Use:   "rotate-secret ID [--grace 24h] [--signing-secret whsec_...]",
		Short: "Give a subscription a new signing secret, keeping the old one valid for a grace period",
		Long: "During the grace period every delivery carries two signatures (webhook-signature: \"v1,<new> v1,<old>\"),\n" +
			"so the partner can switch its verifier to the new secret at any time in it. The new secret (generated\n" +
			"unless --signing-secret is given) is printed on stdout. On a subscription without a secret, this sets one.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if secret == "" {
				secret = subscriptions.NewSigningSecret()
			}
			if grace < 0 {
				return fmt.Errorf("--grace must not be negative, got %s", grace)
			}
			return withStore(g, func(s *subscriptions.Store) error {
				sub, err := s.Update(cmd.Context(), args[0], func(sub *subscriptions.Subscription) error {
					sub.RotateSigningSecret(secret, time.Now(), grace)
					return nil
				})
				if err != nil {
					return withFlag(err)
				}
				if sub.PreviousSigningSecret != "" {
					fmt.Fprintf(cmd.ErrOrStderr(), "rotated %s: the previous secret stays valid until %s\n", sub.ID, sub.PreviousSecretExpiresAt.Format(time.RFC3339))
				} else {
					fmt.Fprintf(cmd.ErrOrStderr(), "set the signing secret of %s\n", sub.ID)
				}
				_, err = fmt.Fprintln(cmd.OutOrStdout(), sub.SigningSecret)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&secret, "signing-secret", "", "the new whsec_ secret (default: a new random one)")
	cmd.Flags().DurationVar(&grace, "grace", 24*time.Hour, "how long the previous secret keeps signing too (0: stops at once)")
	return cmd
}

func newSubsReencryptCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "reencrypt",
		Short: "Seal every API key and signing secret with subscriptions.encryption_key (after setting or rotating it)",
		Long: "Rewrites the entries whose secrets are stored in clear or sealed with one of\n" +
			"subscriptions.previous_encryption_keys. Once it has run, the previous keys can be removed.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withStore(g, func(s *subscriptions.Store) error {
				n, err := s.Reencrypt(cmd.Context())
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "re-encrypted %s\n", subscriptions.Many(n))
				return err
			})
		},
	}
}
