package consumer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/unibo/webhookd/config"
	"github.com/unibo/webhookd/kafkaconn"
)

// AwaitTopics runs EnsureTopics for topics until it succeeds, backing off
// while Kafka is unreachable. It fails when ctx ends, and at once when the
// brokers refuse webhookd's credentials or certificate (or webhookd refuses
// theirs): retrying would not fix the configuration.
func AwaitTopics(ctx context.Context, cfg config.Kafka, topics []string, log *zap.Logger) error {
	cfg.Topics = topics
	backoff := 500 * time.Millisecond
	for {
		err := EnsureTopics(ctx, cfg, log)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("ensure topics: %w", ctx.Err())
		}
		if kafkaconn.IsAuthError(err) {
			return fmt.Errorf("ensure topics: check kafka.sasl and kafka.tls: %w", err)
		}
		log.Warn("cannot ensure topics yet; retrying", zap.Error(err), zap.Duration("backoff", backoff))
		select {
		case <-ctx.Done():
			return fmt.Errorf("ensure topics: %w", ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

// EnsureTopics creates the configured topics that do not exist yet, with
// cfg.Partitions partitions. Existing topics are never altered: a topic
// with fewer partitions than configured is reported and left alone.
func EnsureTopics(ctx context.Context, cfg config.Kafka, log *zap.Logger) error {
	// A transport of its own: kafka-go's shared default transport answers
	// metadata requests from a cache that may predate a topic's creation.
	transport, err := kafkaconn.Transport(cfg)
	if err != nil {
		return err
	}
	defer transport.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: cfg.DialTimeout, Transport: transport}
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: cfg.Topics})
	if err != nil {
		return fmt.Errorf("read topic metadata: %w", err)
	}
	existing := make(map[string]int, len(md.Topics))
	for _, t := range md.Topics {
		if t.Error == nil {
			existing[t.Name] = len(t.Partitions)
		}
	}
	var missing []kafka.TopicConfig
	for _, name := range cfg.Topics {
		n, ok := existing[name]
		switch {
		case !ok:
			missing = append(missing, kafka.TopicConfig{
				Topic:             name,
				NumPartitions:     cfg.Partitions,
				ReplicationFactor: cfg.ReplicationFactor,
			})
		case n < cfg.Partitions:
			log.Info("topic has fewer partitions than kafka.partitions; leaving it as it is",
				zap.String("topic", name), zap.Int("partitions", n), zap.Int("configured", cfg.Partitions))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	res, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: missing})
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	var errs []error
	for _, t := range missing {
		err := res.Errors[t.Topic]
		switch {
		case err == nil:
			log.Info("created topic", zap.String("topic", t.Topic),
				zap.Int("partitions", t.NumPartitions), zap.Int("replication_factor", t.ReplicationFactor))
		case errors.Is(err, kafka.TopicAlreadyExists):
			// Another replica won the race; that is fine.
		default:
			errs = append(errs, fmt.Errorf("create topic %s: %w", t.Topic, err))
		}
	}
	return errors.Join(errs...)
}
