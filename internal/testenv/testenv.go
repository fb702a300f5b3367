// Package testenv is the one place tests get their services from: the real
// Kafka and Redis named by WEBHOOKD_TEST_KAFKA_BROKERS and
// WEBHOOKD_TEST_REDIS_ADDR, or in-process stand-ins (kfake, miniredis) when
// those are unset. The same tests run on both.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/unibo/webhookd/config"
	"github.com/unibo/webhookd/consumer"
	"github.com/unibo/webhookd/embedded"
	"github.com/unibo/webhookd/kafkaconn"
)

// Env names the services a test talks to.
type Env struct {
	Brokers   []string
	RedisAddr string
	// Real is true when the services are the real Kafka and Redis.
	Real bool
}

var (
	once     sync.Once
	shared   Env
	startErr error
)

// Start returns the test services. Embedded services are started once per
// test binary and shared; every test isolates itself with its own topics,
// group and Redis key prefix (see Config).
func Start(t testing.TB) Env {
	t.Helper()
	once.Do(func() {
		brokers := os.Getenv("WEBHOOKD_TEST_KAFKA_BROKERS")
		redisAddr := os.Getenv("WEBHOOKD_TEST_REDIS_ADDR")
		if brokers != "" && redisAddr != "" {
			shared = Env{Brokers: strings.Split(brokers, ","), RedisAddr: redisAddr, Real: true}
			return
		}
		k, err := embedded.StartKafka()
		if err != nil {
			startErr = err
			return
		}
		r, err := embedded.StartRedis()
		if err != nil {
			startErr = err
			return
		}
		shared = Env{Brokers: k.Brokers(), RedisAddr: r.Addr()}
	})
	if startErr != nil {
		t.Fatalf("start test services: %v", startErr)
	}
	return shared
}

// Backends describes the services for log lines.
func (e Env) Backends() string {
	if e.Real {
		return "real Kafka at " + strings.Join(e.Brokers, ",") + ", real Redis at " + e.RedisAddr
	}
	return "embedded kfake at " + strings.Join(e.Brokers, ",") + ", embedded miniredis at " + e.RedisAddr
}

// ID returns a short random identifier for naming a test's resources.
func ID() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Loopback are the ranges the tests' receivers listen on: the egress guard
// must let deliveries reach them.
var Loopback = []string{"127.0.0.0/8", "::1/128"}

// Config is a worker configuration on the test services, with topics, group
// and key prefix of its own and timings short enough for tests.
func (e Env) Config(t testing.TB) config.Config {
	t.Helper()
	id := ID()
	cfg := config.Defaults()
	cfg.Log.Level = "debug"
	cfg.Kafka.Brokers = e.Brokers
	cfg.Kafka.Topics = []string{"t-" + id + "-payouts", "t-" + id + "-participation"}
	cfg.Delivery.Retry.Topic = "t-" + id + "-retry"
	cfg.Delivery.DLQ.Topic = "t-" + id + "-dlq"
	cfg.Consumer.InvalidTopic = "t-" + id + "-invalid"
	cfg.Kafka.GroupID = "webhookd-test-" + id
	cfg.Kafka.Partitions = 3
	cfg.Kafka.ReplicationFactor = -1
	cfg.Kafka.SessionTimeout = 6 * time.Second
	cfg.Kafka.RebalanceTimeout = 10 * time.Second
	cfg.Kafka.HeartbeatInterval = 500 * time.Millisecond
	cfg.Consumer.CommitInterval = 100 * time.Millisecond
	cfg.Redis.Addr = e.RedisAddr
	cfg.Redis.KeyPrefix = "webhookd-test-" + id + ":"
	cfg.Delivery.Timeout = 2 * time.Second
	// The tests' receivers listen on loopback, which the egress guard blocks.
	cfg.Delivery.AllowedCIDRs = Loopback
	cfg.Ops.Addr = "127.0.0.1:0"
	cfg.ShutdownTimeout = 5 * time.Second
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test config: %v", err)
	}
	return cfg
}

// Redis returns a client for the test Redis, closed at the end of the test.
func (e Env) Redis(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: e.RedisAddr})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// CreateTopics creates cfg's topics as webhookd does at startup.
func CreateTopics(t testing.TB, cfg config.Config) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := consumer.EnsureTopics(ctx, cfg.Kafka, zap.NewNop()); err != nil {
		t.Fatalf("create topics: %v", err)
	}
}

// Produce writes messages synchronously with acks from all replicas.
func Produce(t testing.TB, brokers []string, msgs ...kafka.Message) {
	t.Helper()
	produce(t, &kafka.Writer{Addr: kafka.TCP(brokers...)}, msgs)
}

// ProduceWith writes like Produce, connecting as cfg says (SASL, TLS).
func ProduceWith(t testing.TB, cfg config.Kafka, msgs ...kafka.Message) {
	t.Helper()
	transport, err := kafkaconn.Transport(cfg)
	if err != nil {
		t.Fatalf("produce: %v", err)
	}
	defer transport.CloseIdleConnections()
	produce(t, &kafka.Writer{Addr: kafka.TCP(cfg.Brokers...), Transport: transport}, msgs)
}

func produce(t testing.TB, w *kafka.Writer, msgs []kafka.Message) {
	t.Helper()
	w.Balancer = &kafka.Hash{}
	w.RequiredAcks = kafka.RequireAll
	w.BatchTimeout = 5 * time.Millisecond
	w.BatchSize = 1000
	defer func() { _ = w.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		err := w.WriteMessages(ctx, msgs...)
		if err == nil {
			return
		}
		// A freshly created topic may not have a leader for a moment.
		if ctx.Err() != nil || !isRetriable(err) {
			t.Fatalf("produce: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func isRetriable(err error) bool {
	var kerr kafka.Error
	if errors.As(err, &kerr) {
		return kerr.Temporary()
	}
	return strings.Contains(err.Error(), "Unknown Topic Or Partition") || strings.Contains(err.Error(), "Leader Not Available")
}

// Eventually polls cond every 20 ms until it holds or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
