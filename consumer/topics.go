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

// leaderOnset is how long AwaitTopics waits, quietly, for the partitions of
// topics just created to have leaders that answer. A new topic's partitions
// answer "Not Leader For Partition" for a moment after creation (the broker
// has not yet taken up the leadership it was given): harmless, but the
// partition readers would log it as a warning each, several per partition.
const leaderOnset = 10 * time.Second

// AwaitTopics runs EnsureTopics for topics until it succeeds, backing off
// while Kafka is unreachable, then waits (at most leaderOnset, logging at
// debug level) until every partition's leader answers, warning only if some
// still does not. It fails when ctx ends, and at once when the brokers
// refuse webhookd's credentials or certificate (or webhookd refuses theirs):
// retrying would not fix the configuration.
func AwaitTopics(ctx context.Context, cfg config.Kafka, topics []string, log *zap.Logger) error {
	cfg.Topics = topics
	backoff := 500 * time.Millisecond
	for {
		err := EnsureTopics(ctx, cfg, log)
		if err == nil {
			awaitLeaders(ctx, cfg, log)
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
	client, closeClient, err := newClient(cfg)
	if err != nil {
		return err
	}
	defer closeClient()
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

// awaitLeaders waits until every partition of cfg.Topics answers its leader's
// ListOffsets, as a partition reader's first request does. Until leaderOnset
// has passed, a partition that does not is logged at debug level only: that
// is the normal onset of a new topic. After that it warns once and returns;
// the readers retry on their own.
func awaitLeaders(ctx context.Context, cfg config.Kafka, log *zap.Logger) {
	deadline := time.Now().Add(leaderOnset)
	backoff := 50 * time.Millisecond
	for {
		err := partitionsAnswer(ctx, cfg)
		switch {
		case err == nil, ctx.Err() != nil:
			return
		case time.Now().After(deadline):
			log.Warn("partitions still without an answering leader after the onset of new topics; the readers keep retrying",
				zap.Duration("waited", leaderOnset), zap.Error(err))
			return
		}
		log.Debug("waiting for the partitions' leaders to answer (the onset of a new topic)", zap.Error(err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// partitionsAnswer asks each partition's leader for its first offset and
// returns the partitions' errors.
func partitionsAnswer(ctx context.Context, cfg config.Kafka) error {
	// A transport per try: a cached metadata answer may predate the leaders.
	client, closeClient, err := newClient(cfg)
	if err != nil {
		return err
	}
	defer closeClient()
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: cfg.Topics})
	if err != nil {
		return fmt.Errorf("read topic metadata: %w", err)
	}
	req := &kafka.ListOffsetsRequest{Topics: make(map[string][]kafka.OffsetRequest, len(md.Topics))}
	var errs []error
	for _, t := range md.Topics {
		if t.Error != nil {
			errs = append(errs, fmt.Errorf("topic %s: %w", t.Name, t.Error))
			continue
		}
		for _, p := range t.Partitions {
			if p.Error != nil {
				errs = append(errs, fmt.Errorf("partition %d of %s: %w", p.ID, t.Name, p.Error))
				continue
			}
			req.Topics[t.Name] = append(req.Topics[t.Name], kafka.FirstOffsetOf(p.ID))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	res, err := client.ListOffsets(ctx, req)
	if err != nil {
		return fmt.Errorf("list offsets: %w", err)
	}
	for topic, parts := range res.Topics {
		for _, p := range parts {
			if p.Error != nil {
				errs = append(errs, fmt.Errorf("partition %d of %s: %w", p.Partition, topic, p.Error))
			}
		}
	}
	return errors.Join(errs...)
}
