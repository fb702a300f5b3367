package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/unibo/webhookd/config"
	"github.com/unibo/webhookd/consumer"
	"github.com/unibo/webhookd/delivery"
	"github.com/unibo/webhookd/embedded"
	"github.com/unibo/webhookd/event"
	"github.com/unibo/webhookd/subscriptions"
)

const partitions = 12

// services are the Kafka and Redis the bench and webhookd talk to: the real
// ones named by WEBHOOKD_TEST_KAFKA_BROKERS / WEBHOOKD_TEST_REDIS_ADDR, or
// in-process stand-ins inside the bench process.
type services struct {
	Brokers   []string
	RedisAddr string
	KafkaKind string // "real" or "embedded (kfake, in the bench process)"
	RedisKind string
	closers   []func()
}

func startServices() (*services, error) {
	s := &services{}
	if b := os.Getenv("WEBHOOKD_TEST_KAFKA_BROKERS"); b != "" {
		s.Brokers, s.KafkaKind = strings.Split(b, ","), "real"
	} else {
		k, err := embedded.StartKafka()
		if err != nil {
			return nil, err
		}
		s.Brokers, s.KafkaKind = k.Brokers(), "embedded (kfake, in the bench process)"
		s.closers = append(s.closers, k.Close)
	}
	if a := os.Getenv("WEBHOOKD_TEST_REDIS_ADDR"); a != "" {
		s.RedisAddr, s.RedisKind = a, "real"
	} else {
		r, err := embedded.StartRedis()
		if err != nil {
			s.close()
			return nil, err
		}
		s.RedisAddr, s.RedisKind = r.Addr(), "embedded (miniredis, in the bench process)"
		s.closers = append(s.closers, r.Close)
	}
	return s, nil
}

func (s *services) close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
}

// stage is one scenario's private corner of the services: its own topic,
// side topics (retry and its tiers, dead letters, invalid), consumer groups
// and Redis key prefix, so runs never interfere and a run never reads
// another's leftovers.
type stage struct {
	Name         string
	Topic        string
	Group        string
	Prefix       string
	RetryTopic   string // its delay tiers are delivery.RetryTopics(RetryTopic)
	DLQTopic     string
	InvalidTopic string
	kafka        config.Kafka
	redis        config.Redis
	groups       []string // every group id used, deleted at cleanup
}

func (s *services) newStage(runID, name string) *stage {
	id := "webhookd-bench-" + runID + "-" + name
	cfg := config.Defaults()
	cfg.Kafka.Brokers = s.Brokers
	cfg.Kafka.Topics = []string{id}
	cfg.Kafka.GroupID = id
	cfg.Kafka.Partitions = partitions
	cfg.Redis.Addr = s.RedisAddr
	cfg.Redis.KeyPrefix = id + ":"
	return &stage{Name: name, Topic: id, Group: id, Prefix: id + ":",
		RetryTopic: id + "-retry", DLQTopic: id + "-dlq", InvalidTopic: id + "-invalid",
		kafka: cfg.Kafka, redis: cfg.Redis,
		groups: []string{id, id + ".retry"}} // webhookd's retry consumer is <group>.retry
}

// topics is every topic of the stage: the source, the retry topic and its
// tiers, the dead-letter and invalid topics.
func (st *stage) topics() []string {
	return append([]string{st.Topic, st.DLQTopic, st.InvalidTopic}, delivery.RetryTopics(st.RetryTopic)...)
}

// env is what points webhookd at the stage's side topics.
func (st *stage) env() map[string]string {
	return map[string]string{
		"WEBHOOKD_DELIVERY_RETRY_TOPIC":   st.RetryTopic,
		"WEBHOOKD_DELIVERY_DLQ_TOPIC":     st.DLQTopic,
		"WEBHOOKD_CONSUMER_INVALID_TOPIC": st.InvalidTopic,
	}
}

// naiveGroup is a group id of the stage's for a consumer other than webhookd.
func (st *stage) naiveGroup() string {
	g := st.Group + "-naive"
	st.groups = append(st.groups, g)
	return g
}

// createTopic creates the topic with webhookd's own EnsureTopics and waits
// until every partition has a leader, so the first produce does not fail.
func (st *stage) createTopic(ctx context.Context) error {
	if err := consumer.EnsureTopics(ctx, st.kafka, zap.NewNop()); err != nil {
		return err
	}
	client := st.client()
	defer client.Transport.(*kafka.Transport).CloseIdleConnections()
	for {
		md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{st.Topic}})
		if err == nil && len(md.Topics) == 1 && md.Topics[0].Error == nil && len(md.Topics[0].Partitions) == partitions {
			ready := true
			for _, p := range md.Topics[0].Partitions {
				ready = ready && p.Error == nil && p.Leader.Host != ""
			}
			if ready {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topic %s: partitions have no leader yet: %w", st.Topic, errors.Join(err, ctx.Err()))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (st *stage) client() *kafka.Client {
	return &kafka.Client{Addr: kafka.TCP(st.kafka.Brokers...), Timeout: 10 * time.Second, Transport: &kafka.Transport{}}
}

// subscribe adds one enabled subscription per URL for tenant "bench" and
// PRIZE_PAYOUT_SUCCEEDED, through webhookd's own store.
func (st *stage) subscribe(ctx context.Context, urls ...string) error {
	rdb, err := subscriptions.NewRedisClient(st.redis)
	if err != nil {
		return err
	}
	defer func() { _ = rdb.Close() }()
	store := subscriptions.NewStore(rdb, st.Prefix)
	for i, u := range urls {
		_, err := store.Add(ctx, subscriptions.Subscription{
			ID:         fmt.Sprintf("bench-%s-%d", st.Name, i+1),
			TenantID:   benchTenant,
			URL:        u,
			EventTypes: []event.Type{event.PrizePayoutSucceeded},
			Enabled:    true,
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// cleanup deletes the stage's topics, groups and Redis keys; failures are
// returned for the report but never fail the scenario.
func (st *stage) cleanup(ctx context.Context) error {
	var errs []error
	client := st.client()
	defer client.Transport.(*kafka.Transport).CloseIdleConnections()
	if res, err := client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: st.topics()}); err != nil {
		errs = append(errs, fmt.Errorf("delete topics: %w", err))
	} else {
		for t, err := range res.Errors {
			// The side topics exist only if webhookd ran and created them.
			if err != nil && !(t != st.Topic && errors.Is(err, kafka.UnknownTopicOrPartition)) {
				errs = append(errs, fmt.Errorf("delete topic %s: %w", t, err))
			}
		}
	}
	if res, err := client.DeleteGroups(ctx, &kafka.DeleteGroupsRequest{GroupIDs: st.groups}); err != nil {
		errs = append(errs, fmt.Errorf("delete groups: %w", err))
	} else {
		for g, err := range res.Errors {
			if err != nil && !errors.Is(err, kafka.GroupIdNotFound) {
				errs = append(errs, fmt.Errorf("delete group %s: %w", g, err))
			}
		}
	}
	rdb, err := subscriptions.NewRedisClient(st.redis)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	defer func() { _ = rdb.Close() }()
	iter := rdb.Scan(ctx, 0, st.Prefix+"*", 100).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		errs = append(errs, fmt.Errorf("scan redis keys: %w", err))
	} else if len(keys) > 0 {
		if err := rdb.Del(ctx, keys...).Err(); err != nil {
			errs = append(errs, fmt.Errorf("delete redis keys: %w", err))
		}
	}
	return errors.Join(errs...)
}

// warmUp pushes events through a real broker once, produced and fetched by
// a consumer group, so that the first scenario does not run against a cold
// broker (JIT, page cache, group coordinator).
func (b *bench) warmUp(ctx context.Context) error {
	const events = 100_000
	st := b.svc.newStage(b.runID, "warmup")
	if err := st.createTopic(ctx); err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := st.cleanup(cctx); err != nil {
			b.progress("warmup", "cleanup: %v", err)
		}
	}()
	pre, err := preload(ctx, b.svc.Brokers, st.Topic, events, partitions)
	if err != nil {
		return err
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: b.svc.Brokers, GroupID: st.Group, Topic: st.Topic,
		MinBytes: 1, MaxBytes: 10 << 20, StartOffset: kafka.FirstOffset})
	defer func() { _ = r.Close() }()
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	start := time.Now()
	for n := 0; n < events; n++ {
		if _, err := r.FetchMessage(rctx); err != nil {
			return fmt.Errorf("warm-up fetch after %d events: %w", n, err)
		}
	}
	b.progress("warmup", "broker warmed up: %d events produced at %.0f/s, fetched in %.1f s", events, pre.rate(), time.Since(start).Seconds())
	return nil
}
