package main

import (
	"fmt"

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
			return nil
		},
	}, &cobra.Command{
		Use:   "reference",
		Short: "Print the configuration reference as a Markdown table",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprint(g.stdout, config.Reference())
			return err
		},
	})
	return cmd
}
