// Package consumer reads Kafka topics through a consumer group, hands each
// message to a Handler (EventHandler decodes domain events and delivers
// them) and commits each partition's offsets only up to the oldest message
// whose handling is not over.
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
	"github.com/unibo/webhookd/kafkaconn"
)

// Handler processes one message and returns when its work is over (for a
// domain event: every delivery attempt made, or its failure recorded). An
// error means the message was invalid and has been set aside: the consumer
// counts and logs it and moves on. If ctx is cancelled before the work is
// over, the consumer does not commit the message: its next owner handles it
// again.
type Handler interface {
	Handle(ctx context.Context, m *kafka.Message) error
}

// AsyncHandler is a Handler whose work may go on after it returns: the
// partition's lane hands a message over and reads on, and done is called
// exactly once when the message's work is over, with what Handle would
// have returned. The message holds its place in the partition's window
// (consumer.max_in_flight) until then, and is committed only after.
// Domain events are handled so: their deliveries go at each endpoint's own
// pace, and no lane waits for a slow partner.
type AsyncHandler interface {
	Handler
	HandleAsync(ctx context.Context, m *kafka.Message, done func(error))
}

// PartitionWatcher is a Handler told when the consumer stops reading a
// partition (revoked, or shutting down), once its in-flight work is over:
// state it keeps about the partition may change under the next owner.
type PartitionWatcher interface {
	Released(topic string, partition int)
}

// WindowWatcher is a Handler told when reading a partition waits for room
// in its window (consumer.max_in_flight) or the pod's
// (consumer.max_in_flight_total): at once, then every 100 ms while it
// waits. What holds the window can tell whether anyone waits behind it.
type WindowWatcher interface {
	WindowFull()
}

// Gated is a Handler whose messages may only be read from a given time on
// (the retry topic's delay tiers). The partition's fetch loop waits for the
// gate of each message before handing it over; no lane or slot is held
// meanwhile, and since gates grow with the offset nothing behind the
// message could be read earlier. A zero time means at once.
type Gated interface {
	Due(m *kafka.Message) time.Time
}

// Recorder counts consumed messages and tracks each owned partition's lag
// (Prometheus in production).
type Recorder interface {
	Consumed(topic string, invalid bool)
	Lag(topic string, partition int, lag int64)
	Released(topic string, partition int)
}

// Stats counts what the consumer has seen since start.
type Stats struct {
	Handled atomic.Int64 // messages whose handling is over
	Invalid atomic.Int64 // messages set aside as invalid
}

// Consumer runs one consumer group over a set of topics.
type Consumer struct {
	kafka           config.Kafka // GroupID and Topics are this consumer's
	opts            config.Consumer
	shutdownTimeout time.Duration
	handler         Handler
	rec             Recorder
	log             *zap.Logger

	// dialer is built by Run from the configuration (kafkaconn), before
	// any partition reader needs it.
	dialer *kafka.Dialer
	// total bounds the messages in flight across every partition.
	total    chan struct{}
	laneSeed maphash.Seed
	joined   atomic.Bool
	stats    Stats
}

// New builds a Consumer of group over topics from validated configuration.
// Topics must exist (see EnsureTopics).
func New(cfg config.Config, group string, topics []string, h Handler, rec Recorder, log *zap.Logger) *Consumer {
	kcfg := cfg.Kafka
	kcfg.GroupID, kcfg.Topics = group, topics
	return &Consumer{
		kafka:           kcfg,
		opts:            cfg.Consumer,
		shutdownTimeout: cfg.ShutdownTimeout,
		handler:         h,
		rec:             rec,
		log:             log,
		total:           make(chan struct{}, cfg.Consumer.MaxInFlightTotal),
		laneSeed:        maphash.MakeSeed(),
	}
}

// windowFull passes a full window on to the handler, when it watches.
func (c *Consumer) windowFull() {
	if w, ok := c.handler.(WindowWatcher); ok {
		w.WindowFull()
	}
}

// InFlight is the number of messages read and not yet finished.
func (c *Consumer) InFlight() int { return len(c.total) }

// Joined reports whether the consumer currently holds a group generation.
func (c *Consumer) Joined() bool { return c.joined.Load() }

// Stats returns the live counters.
func (c *Consumer) Stats() *Stats { return &c.stats }

// Run joins the group and consumes until ctx is cancelled. On cancel it
// stops fetching, lets in-flight work finish (bounded by the shutdown
// timeout), commits and leaves the group. It returns nil after a clean stop.
func (c *Consumer) Run(ctx context.Context) error {
	start := kafka.FirstOffset
	if c.kafka.StartOffset == "latest" {
		start = kafka.LastOffset
	}
	dialer, err := kafkaconn.Dialer(c.kafka)
	if err != nil {
		return fmt.Errorf("consumer group %s: %w", c.kafka.GroupID, err)
	}
	c.dialer = dialer
	group, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                    c.kafka.GroupID,
		Brokers:               c.kafka.Brokers,
		Dialer:                dialer,
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
			if kafkaconn.IsAuthError(err) {
				// Rejoining would be refused the same way: stop the worker
				// with the reason rather than retry for ever.
				_ = group.Close()
				return fmt.Errorf("consumer group %s: check kafka.sasl and kafka.tls: %w", c.kafka.GroupID, err)
			}
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

// ErrUnfinished is returned by a Handler that stopped before its work was
// over (say, a retry not yet due when the partition is revoked): the message
// stays uncommitted and its next owner handles it.
var ErrUnfinished = errors.New("message handling not finished")

type stoppingKey struct{}

// Stopping returns a channel closed when the partition a handler works for
// is being revoked or the consumer is stopping: work not yet started should
// give up (return ErrUnfinished) rather than hold up the rebalance.
func Stopping(ctx context.Context) <-chan struct{} {
	if ch, ok := ctx.Value(stoppingKey{}).(<-chan struct{}); ok {
		return ch
	}
	return nil // never closes
}

// handle runs the handler on one message and reports whether the message
// is finished (and may be committed).
func (c *Consumer) handle(ctx context.Context, m *kafka.Message, log *zap.Logger) bool {
	return c.handled(ctx, m, c.handler.Handle(ctx, m), log)
}

// handled counts and logs the end of a message's handling, err being what
// the handler returned, and reports whether it may be committed.
func (c *Consumer) handled(ctx context.Context, m *kafka.Message, err error, log *zap.Logger) bool {
	invalid := err != nil && !errors.Is(err, ErrUnfinished)
	switch {
	case err == nil:
	case !invalid:
		return false
	default:
		c.stats.Invalid.Add(1)
		key := m.Key
		if len(key) > 256 {
			key = key[:256] // hostile input: keep log lines bounded
		}
		log.Warn("skipping invalid message",
			zap.Int64("offset", m.Offset), zap.ByteString("key", key),
			zap.Int("bytes", len(m.Value)), zap.String("reason", err.Error()))
	}
	if ctx.Err() != nil {
		return false
	}
	c.stats.Handled.Add(1)
	c.rec.Consumed(m.Topic, invalid)
	return true
}
