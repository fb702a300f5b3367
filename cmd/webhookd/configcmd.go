package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/unibo/webhookd/config"
)

func newConfigCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Inspect configuration"}
	cmd.AddCommand(&cobra.Command{
		Use:   "print",
		Short: "Print the effective configuration (defaults, file, env) with secrets masked",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			cfg, err := g.load()
			if err != nil {
				return err
			}
			m := cfg.Masked()
			for _, k := range config.SortedKeys(m) {
				fmt.Fprintf(g.stdout, "%s = %v\n", k, m[k])
			}
			for _, u := range config.UnknownEnv(os.Environ()) {
				fmt.Fprintf(g.stderr, "warning: %v\n", u)
			}
			return nil
		},
	}, newConfigReferenceCmd(g), newConfigValidateCmd(g))
	return cmd
}

func newConfigReferenceCmd(g *globals) *cobra.Command {
	var doc bool
	cmd := &cobra.Command{
		Use:   "reference [--doc]",
		Short: "Print the configuration reference as a Markdown table (--doc: docs/configuration.md)",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			out := config.Reference()
			if doc {
				out = config.ReferenceDoc()
			}
			_, err := fmt.Fprint(g.stdout, out)
			return err
		},
	}
	cmd.Flags().BoolVar(&doc, "doc", false, "the whole docs/configuration.md, with types")
	return cmd
}

func newConfigValidateCmd(g *globals) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "validate -f FILE",
		Short: "Check a config file (with the environment applied on top, as the worker would); exit 1 naming each bad key and each WEBHOOKD_* variable that names no option",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			var problems []error
			if _, err := config.Load(file); err != nil {
				problems = append(problems, err)
			}
			// The worker only warns of these; validating is the time to fail.
			for _, u := range config.UnknownEnv(os.Environ()) {
				problems = append(problems, u)
			}
			if len(problems) > 0 {
				return fmt.Errorf("%s is not valid:\n%w", file, errors.Join(problems...))
			}
			_, err := fmt.Fprintf(g.stdout, "%s: valid\n", file)
			return err
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "YAML config file (required)")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}
