// Command webhookd delivers the prize platform's domain events from Kafka to
// partners' webhook endpoints. With no subcommand it runs the worker.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCmd(os.Stdout, os.Stderr).ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "webhookd:", err)
		stop()
		os.Exit(1)
	}
}
