// Package app wires webhookd's worker: the subscription table, the delivery
// fan-out, the Kafka consumer, the ops server and, when admin.addr is set,
// the admin API, run under one errgroup.
package app

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/unibo/webhookd/admin"
	"github.com/unibo/webhookd/config"
	"github.com/unibo/webhookd/consumer"
	"github.com/unibo/webhookd/delivery"
	"github.com/unibo/webhookd/metrics"
	"github.com/unibo/webhookd/ops"
	"github.com/unibo/webhookd/order"
	"github.com/unibo/webhookd/podstate"
	"github.com/unibo/webhookd/subscriptions"
)

// Worker is one webhookd process's worth of delivery.
type Worker struct {
	cfg       config.Config
	log       *zap.Logger
	table     *subscriptions.Table
	sender    *delivery.Sender
	sink      *delivery.KafkaSink
	fanout    *delivery.Fanout
	redeliver *delivery.Redeliverer
	redis     redis.UniversalClient
	consumer  *consumer.Consumer // the source topics
	retries   *consumer.Consumer // the retry topic
	ops       *ops.Server
	admin     *admin.Server // nil unless admin.addr is set
	closeRDB  func() error
}

// New builds a worker and binds the ops port; nothing runs until Run.
func New(cfg config.Config, log *zap.Logger) (*Worker, error) {
	sink, err := delivery.NewKafkaSink(cfg, log.Named("sink"))
	if err != nil {
		return nil, err
	}
	store, closeRDB, err := subscriptions.OpenStore(cfg)
	if err != nil {
		_ = sink.Close()
		return nil, err
	}
	w := &Worker{
		cfg:      cfg,
		log:      log,
		table:    subscriptions.NewTable(store, cfg.Subscriptions, log.Named("subscriptions")),
		sink:     sink,
		closeRDB: closeRDB,
	}
	m := metrics.New(
		func() float64 { return float64(w.consumer.InFlight() + w.retries.InFlight()) },
		func() (int, time.Time) { st := w.table.Status(); return st.Size, st.LoadedAt })
	w.sender = delivery.NewSender(cfg.Delivery, log.Named("delivery"), m)
	m.WatchEndpoints(w.sender.Endpoints)
	settler := delivery.NewSettler(w.sink, store, delivery.NewPolicy(cfg.Delivery), m, log.Named("delivery"))
	w.redis = store.Redis()
	settler.KeepOrder(order.NewChains(w.redis, cfg.Redis.KeyPrefix))
	settler.CountDeferrals(w.sender)
	w.fanout = delivery.NewFanout(w.table, w.sender, settler, log.Named("delivery"))
	w.consumer = consumer.New(cfg, cfg.Kafka.GroupID, cfg.Kafka.Topics,
		consumer.NewEventHandler(w.fanout, w.sink, cfg.Consumer.MaxMessageBytes), m, log.Named("consumer"))
	w.redeliver = delivery.NewRedeliverer(w.table, w.sender, settler)
	w.retries = consumer.New(cfg, cfg.Kafka.GroupID+".retry", delivery.RetryTopics(cfg.Delivery.Retry.Topic),
		consumer.NewRetryHandler(cfg.Delivery.Retry.Topic, w.redeliver, w.sink, w.sink), m, log.Named("retry"))
	if cfg.Admin.Addr != "" {
		var err error
		if w.admin, err = newAdmin(cfg, store, log.Named("admin")); err != nil {
			_ = closeRDB()
			_ = sink.Close()
			return nil, err
		}
	}
	srv, err := ops.Listen(cfg.Ops.Addr, ops.Handler(w.Readiness, m.Handler(), cfg.Ops.Pprof), log.Named("ops"))
	if err != nil {
		if w.admin != nil {
			_ = w.admin.Close()
		}
		_ = closeRDB()
		_ = sink.Close()
		return nil, err
	}
	w.ops = srv
	return w, nil
}

// newAdmin builds the admin API on the worker's store and binds its port.
func newAdmin(cfg config.Config, store *subscriptions.Store, log *zap.Logger) (*admin.Server, error) {
	h, err := admin.NewHandler(admin.Deps{
		Store:       store,
		DeadLetters: admin.KafkaDeadLetters{Config: cfg, Store: store},
		Probe:       delivery.ProbeWith(cfg.Delivery.Egress()),
		Token:       cfg.Admin.Token,
		Log:         log,
	})
	if err != nil {
		return nil, err
	}
	return admin.Listen(cfg.Admin.Addr, h, log)
}

// AdminAddr is the admin API's bound address, "" when it is off.
func (w *Worker) AdminAddr() string {
	if w.admin == nil {
		return ""
	}
	return w.admin.Addr().String()
}

// OpsAddr is the ops server's bound address.
func (w *Worker) OpsAddr() string { return w.ops.Addr().String() }

// Consumer exposes the consumer's counters.
func (w *Worker) Consumer() *consumer.Consumer { return w.consumer }

// Retries exposes the retry consumer's counters.
func (w *Worker) Retries() *consumer.Consumer { return w.retries }

// Deliveries exposes the delivery counters.
func (w *Worker) Deliveries() *delivery.Stats { return w.fanout.Stats() }

// Run runs until ctx is cancelled or a component fails. Consumption starts
// only once the subscription table is loaded: an event matched against an
// empty table would be committed without being delivered.
func (w *Worker) Run(ctx context.Context) error {
	w.log.Info("starting webhookd", zap.Object("config", w.cfg))
	for _, u := range config.UnknownEnv(os.Environ()) {
		fields := []zap.Field{zap.String("variable", u.Name)}
		if u.Suggestion != "" {
			fields = append(fields, zap.String("did_you_mean", u.Suggestion))
		}
		w.log.Warn("environment variable names no option; ignored", fields...)
	}
	defer w.sender.Close()
	defer w.fanout.Close()
	defer w.redeliver.Close()
	defer func() { _ = w.closeRDB() }()
	defer func() { _ = w.sink.Close() }()

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return w.ops.Run(gctx) })
	if w.admin != nil {
		g.Go(func() error { return w.admin.Run(gctx) })
	}
	g.Go(func() error { return w.table.Run(gctx) })
	g.Go(func() error { w.publishEndpoints(gctx); return nil })
	g.Go(func() error {
		if !w.waitForTable(gctx) {
			return nil
		}
		if w.cfg.Kafka.CreateTopics {
			topics := append(slices.Clone(w.cfg.Kafka.Topics), w.cfg.Delivery.DLQ.Topic, w.cfg.Consumer.InvalidTopic)
			topics = append(topics, delivery.RetryTopics(w.cfg.Delivery.Retry.Topic)...)
			if err := consumer.AwaitTopics(gctx, w.cfg.Kafka, topics, w.log.Named("consumer")); err != nil {
				if gctx.Err() != nil {
					return nil // stopped before Kafka was reachable
				}
				return err
			}
		}
		cg, cctx := errgroup.WithContext(gctx)
		cg.Go(func() error { return w.consumer.Run(cctx) })
		cg.Go(func() error { return w.retries.Run(cctx) })
		return cg.Wait()
	})
	if err := g.Wait(); err != nil {
		return fmt.Errorf("webhookd: %w", err)
	}
	w.log.Info("webhookd stopped")
	return nil
}

// publishEvery is how often a worker publishes its endpoints' state for
// `webhookd status`.
const publishEvery = 5 * time.Second

// publishEndpoints writes the endpoints' state to the pod board every
// publishEvery until ctx ends, then removes it. A Redis error is logged
// once per outage: the board is for operators, deliveries never wait on it.
func (w *Worker) publishEndpoints(ctx context.Context) {
	pod, err := os.Hostname()
	if err != nil || pod == "" {
		pod = fmt.Sprintf("pid-%d", os.Getpid())
	}
	board := podstate.NewBoard(w.redis, w.cfg.Redis.KeyPrefix)
	tick := time.NewTicker(publishEvery)
	defer tick.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			rctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_ = board.Remove(rctx, pod)
			return
		case <-tick.C:
		}
		err := board.Publish(ctx, pod, w.sender.Endpoints())
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			failing = true
			w.log.Warn("cannot publish the endpoints' state for webhookd status; deliveries go on", zap.Error(err))
		case err == nil && failing:
			failing = false
			w.log.Info("publishing the endpoints' state again")
		}
	}
}

func (w *Worker) waitForTable(ctx context.Context) bool {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !w.table.Ready() {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
	st := w.table.Status()
	w.log.Info("subscription table loaded; starting consumer", zap.Int("subscriptions", st.Size), zap.Int64("version", st.Version))
	if w.cfg.Subscriptions.EncryptionKey == "" {
		// Said once the table has loaded without a key, which proves its
		// secrets are in clear: a sealed table does not load (the table
		// reports which key is missing).
		w.log.Warn("subscriptions.encryption_key is not set: API keys and signing secrets are stored in clear in Redis; set it (WEBHOOKD_SUBSCRIPTIONS_ENCRYPTION_KEY) in production, then run `webhookd subscriptions reencrypt`")
	}
	return true
}

// Readiness is what /readyz reports: the group is joined, the subscription
// table is loaded, and Redis answers or a cached table is being served.
func (w *Worker) Readiness() []ops.Check {
	st := w.table.Status()
	checks := make([]ops.Check, 0, 3)

	table := ops.Check{Name: "subscriptions", OK: st.Loaded}
	if st.Loaded {
		table.Detail = fmt.Sprintf("%d subscriptions, version %d, loaded %s ago", st.Size, st.Version, time.Since(st.LoadedAt).Round(time.Second))
	} else {
		table.Detail = "subscription table not loaded yet"
	}
	checks = append(checks, table)

	redis := ops.Check{Name: "redis", OK: st.RedisOK || st.Loaded}
	switch {
	case st.RedisOK:
		redis.Detail = "reachable"
	case st.Unusable && st.Loaded:
		redis.Detail = "reachable, but its table cannot be used; serving the cached table: " + st.LastError
	case st.Unusable:
		redis.Detail = "reachable, but its table cannot be used: " + st.LastError
	case st.Loaded:
		redis.Detail = "unreachable, serving the cached table: " + st.LastError
	default:
		redis.Detail = "unreachable: " + st.LastError
	}
	checks = append(checks, redis)

	kafka := ops.Check{Name: "kafka", OK: w.consumer.Joined() && w.retries.Joined()}
	if kafka.OK {
		kafka.Detail = "consumer groups " + w.cfg.Kafka.GroupID + " and " + w.cfg.Kafka.GroupID + ".retry joined"
	} else {
		kafka.Detail = fmt.Sprintf("consumer group %s joined: %v; %s.retry joined: %v",
			w.cfg.Kafka.GroupID, w.consumer.Joined(), w.cfg.Kafka.GroupID, w.retries.Joined())
	}
	return append(checks, kafka)
}
