package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/unibo/webhookd/app"
	"github.com/unibo/webhookd/config"
	"github.com/unibo/webhookd/embedded"
	"github.com/unibo/webhookd/event"
	"github.com/unibo/webhookd/subscriptions"
)

func newDemoCmd(g *globals) *cobra.Command {
	var opsAddr string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run webhookd on an in-process Kafka and Redis and deliver one of each of the guide's events to a local receiver",
		Long: "demo needs nothing but Go: it starts an in-process Kafka-protocol broker (kfake), an in-process Redis\n" +
			"(miniredis) and a local webhook receiver that prints what it gets, subscribes the receiver, runs the\n" +
			"worker exactly as production does, and publishes one example of every event and prize type of the\n" +
			"Webhook Integration Guide. Ctrl-C stops it.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDemo(cmd.Context(), g, opsAddr)
		},
	}
	cmd.Flags().StringVar(&opsAddr, "ops-addr", "127.0.0.1:8081", "address of /healthz and /readyz")
	return cmd
}

func runDemo(ctx context.Context, g *globals, opsAddr string) error {
	kfk, err := embedded.StartKafka()
	if err != nil {
		return err
	}
	defer kfk.Close()
	rds, err := embedded.StartRedis()
	if err != nil {
		return err
	}
	defer rds.Close()
	recv, err := embedded.StartReceiver(g.stdout)
	if err != nil {
		return err
	}
	defer func() { _ = recv.Close() }()

	cfg := config.Defaults()
	cfg.Log.Format = "console"
	cfg.Kafka.Brokers = kfk.Brokers()
	cfg.Kafka.Partitions = 3
	cfg.Kafka.SessionTimeout = 6 * time.Second
	cfg.Kafka.HeartbeatInterval = time.Second
	cfg.Redis.Addr = rds.Addr()
	cfg.Ops.Addr = opsAddr
	cfg.ShutdownTimeout = 5 * time.Second
	// The demo's receiver listens on loopback, which the egress guard blocks.
	cfg.Delivery.AllowedCIDRs = []string{"127.0.0.0/8"}
	// As production should run: secrets sealed at rest (a throwaway key).
	key := make([]byte, subscriptions.EncryptionKeyBytes)
	_, _ = rand.Read(key)
	cfg.Subscriptions.EncryptionKey = base64.StdEncoding.EncodeToString(key)
	if err := cfg.Validate(); err != nil {
		return err
	}
	log, err := app.NewLogger(cfg.Log)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()

	store, closeStore, err := subscriptions.OpenStore(cfg)
	if err != nil {
		return err
	}
	defer func() { _ = closeStore() }()
	sub, err := store.Add(ctx, subscriptions.Subscription{
		TenantID:   "tenant-demo",
		URL:        recv.URL(),
		EventTypes: event.Types[:],
		APIKey:     "demo-api-key-0123456789",
		// Signed deliveries: the receiver prints webhook-timestamp and webhook-signature.
		SigningSecret: subscriptions.NewSigningSecret(),
		Enabled:       true,
	})
	if err != nil {
		return fmt.Errorf("add demo subscription: %w", err)
	}
	log.Info("demo subscription added", zap.String("subscription_id", sub.ID), zap.String("url", sub.URL))

	w, err := app.New(cfg, log)
	if err != nil {
		return err
	}
	eg, ectx := errgroup.WithContext(ctx)
	eg.Go(func() error { return w.Run(ectx) })
	eg.Go(func() error { return publishExamples(ectx, cfg, w, log) })
	return eg.Wait()
}

// publishExamples waits for the worker to be ready, then publishes every
// example of the guide as a payout service would.
func publishExamples(ctx context.Context, cfg config.Config, w *app.Worker, log *zap.Logger) error {
	for !ready(w) {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
	writer := &kafka.Writer{
		Addr:         kafka.TCP(cfg.Kafka.Brokers...),
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 10 * time.Millisecond,
	}
	defer func() { _ = writer.Close() }()
	msgs := make([]kafka.Message, 0, len(event.Examples))
	for _, ex := range event.Examples {
		topic := cfg.Kafka.Topics[0]
		if !ex.Type.IsPayout() && len(cfg.Kafka.Topics) > 1 {
			topic = cfg.Kafka.Topics[1]
		}
		msgs = append(msgs, kafka.Message{Topic: topic, Key: []byte(ex.Name), Value: []byte(ex.Domain)})
	}
	if err := writer.WriteMessages(ctx, msgs...); err != nil {
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return fmt.Errorf("publish examples: %w", err)
	}
	log.Info("published one example of every event and prize type; watch the deliveries below, Ctrl-C to stop",
		zap.Int("events", len(msgs)))
	return nil
}

func ready(w *app.Worker) bool {
	for _, c := range w.Readiness() {
		if !c.OK {
			return false
		}
	}
	return true
}
