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
			return nil // g.load warned of unknown variables
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
		Use:   "validate [-f FILE]",
		Short: "Check the configuration the worker would run with: defaults, FILE if given, then the environment; exit 1 naming each bad key and each WEBHOOKD_* variable that names no option",
		Long: "validate loads the configuration as the worker does: the defaults, then FILE when -f is given, then the\n" +
			"WEBHOOKD_* environment variables on top. Without -f it checks the defaults and the environment alone,\n" +
			"for a deployment configured only by environment (a Kubernetes ConfigMap). It exits 0 when the worker\n" +
			"would start with it, 1 naming every problem: a bad value or key, and each WEBHOOKD_* variable that\n" +
			"names no option (which the worker only warns of).",
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if file == "" {
				file = g.configPath // webhookd --config FILE config validate
			}
			what := "defaults and the environment"
			if file != "" {
				what = file + " and the environment"
			}
			_, loadErr := config.Load(file)
			// The worker only warns of these; validating is the time to fail.
			var unknown []error
			for _, u := range config.UnknownEnv(os.Environ()) {
				unknown = append(unknown, u)
			}
			switch {
			case loadErr != nil:
				// A bad value may come from the file or from its variable.
				return fmt.Errorf("the configuration (%s) is not valid:\n%w", what, errors.Join(append([]error{loadErr}, unknown...)...))
			case len(unknown) > 0 && file != "":
				return fmt.Errorf("%s is valid, but the environment is not:\n%w", file, errors.Join(unknown...))
			case len(unknown) > 0:
				return fmt.Errorf("the environment is not valid:\n%w", errors.Join(unknown...))
			}
			_, err := fmt.Fprintf(g.stdout, "valid: %s\n", what)
			return err
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "YAML config file (default: --config; without either, the defaults and the environment alone)")
	return cmd
}
