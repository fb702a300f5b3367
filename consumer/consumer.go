// Package consumer reads domain events from Kafka through a consumer group,
// decodes them, hands them to a Deliverer and commits each partition's
// offsets only up to the oldest message whose delivery is not over.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/unibo/webhookd/config"
	"github.com/unibo/webhookd/event"
)

// Deliverer delivers one decoded event to every subscription it matches and
// returns when every attempt is over. If ctx is cancelled before that, the
// consumer treats the message as not delivered and does not commit it.
type Deliverer interface {
	Deliver(ctx context.Context, ev event.Event)
}

// Stats counts what the consumer has seen since start.
type Stats struct {
	Handled atomic.Int64 // messages whose handling (decode, every delivery attempt) is over
	Invalid atomic.Int64 // messages skipped as invalid domain events
}

// Consumer runs the consumer group.
type Consumer struct {
	kafka           config.Kafka
	opts            config.Consumer
	shutdownTimeout time.Duration
	deliver         Deliverer
	log             *zap.Logger

	// total bounds the messages in flight across every partition.
	total    chan struct{}
	laneSeed maphash.Seed
	joined   atomic.Bool
	stats    Stats
}

// New builds a Consumer from validated configuration.
func New(cfg config.Config, d Deliverer, log *zap.Logger) *Consumer {
	return &Consumer{
		kafka:           cfg.Kafka,
		opts:            cfg.Consumer,
		shutdownTimeout: cfg.ShutdownTimeout,
		deliver:         d,
		log:             log,
		total:           make(chan struct{}, cfg.Consumer.MaxInFlightTotal),
		laneSeed:        maphash.MakeSeed(),
	}
}

// Joined reports whether the consumer currently holds a group generation.
func (c *Consumer) Joined() bool { return c.joined.Load() }

// Stats returns the live counters.
func (c *Consumer) Stats() *Stats { return &c.stats }

// Run creates missing topics (when configured), joins the group and consumes
// until ctx is cancelled. On cancel it stops fetching, lets in-flight
// deliveries finish (bounded by the shutdown timeout), commits and leaves the
// group. It returns nil after a clean stop.
func (c *Consumer) Run(ctx context.Context) error {
	if c.kafka.CreateTopics {
		if err := c.ensureTopics(ctx); err != nil {
			if ctx.Err() != nil {
				return nil // stopped before Kafka was reachable
			}
			return err
		}
	}
	start := kafka.FirstOffset
	if c.kafka.StartOffset == "latest" {
		start = kafka.LastOffset
	}
	group, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                    c.kafka.GroupID,
		Brokers:               c.kafka.Brokers,
		Dialer:                c.dialer(),
		Topics:                c.kafka.Topics,
		HeartbeatInterval:     c.kafka.HeartbeatInterval,
		SessionTimeout:        c.kafka.SessionTimeout,
		RebalanceTimeout:      c.kafka.RebalanceTimeout,
		JoinGroupBackoff:      time.Second,
		WatchPartitionChanges: true,
		StartOffset:           start,
		Logger:                kafka.LoggerFunc(func(msg string, args ...any) { c.log.Debug(fmt.Sprintf(msg, args...)) }),
		ErrorLogger:           kafka.LoggerFunc(func(msg string, args ...any) { c.log.Warn(fmt.Sprintf(msg, args...)) }),
	})
	if err != nil {
		return fmt.Errorf("consumer group: %w", err)
	}

	for {
		gen, err := group.Next(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, kafka.ErrGroupClosed) {
				break
			}
			c.joined.Store(false)
			c.log.Warn("consumer group generation failed; rejoining", zap.String("group_id", c.kafka.GroupID), zap.Error(err))
			continue
		}
		c.startGeneration(gen)
	}
	// Closing the group ends the current generation: every partition stops
	// fetching, drains, commits, and only then does the member leave.
	c.log.Info("stopping consumer: draining in-flight deliveries", zap.Duration("shutdown_timeout", c.shutdownTimeout))
	err = group.Close()
	c.joined.Store(false)
	if err != nil {
		return fmt.Errorf("close consumer group: %w", err)
	}
	c.log.Info("consumer stopped")
	return nil
}

func (c *Consumer) ensureTopics(ctx context.Context) error {
	backoff := 500 * time.Millisecond
	for {
		err := EnsureTopics(ctx, c.kafka, c.log)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("ensure topics: %w", ctx.Err())
		}
		c.log.Warn("cannot ensure topics yet; retrying", zap.Error(err), zap.Duration("backoff", backoff))
		select {
		case <-ctx.Done():
			return fmt.Errorf("ensure topics: %w", ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

func (c *Consumer) dialer() *kafka.Dialer {
	return &kafka.Dialer{ClientID: c.kafka.ClientID, Timeout: c.kafka.DialTimeout, DualStack: true}
}

func (c *Consumer) startGeneration(gen *kafka.Generation) {
	assigned := 0
	for _, parts := range gen.Assignments {
		assigned += len(parts)
	}
	c.log.Info("joined consumer group",
		zap.String("group_id", gen.GroupID), zap.Int32("generation", gen.ID),
		zap.String("member_id", gen.MemberID), zap.Int("partitions", assigned))

	commits := newCommitter(gen, c.log)
	gen.Start(func(ctx context.Context) { commits.run(ctx, c.opts.CommitInterval) })
	for topic, parts := range gen.Assignments {
		for _, p := range parts {
			pc := &partitionConsumer{
				c:         c,
				topic:     topic,
				partition: p.ID,
				offset:    p.Offset,
				commits:   commits,
				log:       c.log.With(zap.String("topic", topic), zap.Int("partition", p.ID)),
			}
			gen.Start(pc.run)
		}
	}
	c.joined.Store(true)
}

// handle decodes one message and delivers it. It returns when the delivery
// attempts are over (or ctx is cancelled).
func (c *Consumer) handle(ctx context.Context, m *kafka.Message, log *zap.Logger) {
	defer c.stats.Handled.Add(1)
	ev, err := event.Decode(m.Value)
	if err != nil {
		c.stats.Invalid.Add(1)
		log.Warn("skipping invalid domain event",
			zap.Int64("offset", m.Offset), zap.ByteString("key", m.Key),
			zap.Int("bytes", len(m.Value)), zap.String("reason", err.Error()))
		return
	}
	ev.Source = event.Source{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Key: string(m.Key), Time: m.Time}
	c.deliver.Deliver(ctx, ev)
}
