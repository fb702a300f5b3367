// Package integration holds webhookd's end-to-end suite: domain events go
// into Kafka, the worker (wired exactly as the binary wires it) reads the
// subscription table from Redis and partners' HTTP endpoints receive the
// guide's webhooks. It runs on the real Kafka and Redis when
// WEBHOOKD_TEST_KAFKA_BROKERS and WEBHOOKD_TEST_REDIS_ADDR are set, and on
// in-process kfake and miniredis otherwise.
package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/unibo/webhookd/config"
	"github.com/unibo/webhookd/event"
	"github.com/unibo/webhookd/internal/testenv"
	"github.com/unibo/webhookd/subscriptions"
)

func TestMain(m *testing.M) {
	if os.Getenv("WEBHOOKD_TEST_KAFKA_BROKERS") != "" && os.Getenv("WEBHOOKD_TEST_REDIS_ADDR") != "" {
		fmt.Printf("integration: REAL backends: Kafka %s, Redis %s\n",
			os.Getenv("WEBHOOKD_TEST_KAFKA_BROKERS"), os.Getenv("WEBHOOKD_TEST_REDIS_ADDR"))
	} else {
		fmt.Println("integration: EMBEDDED backends (kfake, miniredis): set WEBHOOKD_TEST_KAFKA_BROKERS and WEBHOOKD_TEST_REDIS_ADDR for real ones")
	}
	if os.Getenv("WEBHOOKD_TEST_KAFKA_SASL_BROKERS") != "" && os.Getenv("WEBHOOKD_TEST_REDIS_TLS_ADDR") != "" {
		fmt.Printf("integration: secured listeners too: Kafka SASL %s, SASL+TLS %s, Redis TLS %s\n",
			os.Getenv("WEBHOOKD_TEST_KAFKA_SASL_BROKERS"), os.Getenv("WEBHOOKD_TEST_KAFKA_SASL_SSL_BROKERS"), os.Getenv("WEBHOOKD_TEST_REDIS_TLS_ADDR"))
	} else {
		fmt.Println("integration: no secured listeners: the SASL/TLS tests skip (see internal/testenv/secure.go)")
	}
	if os.Getenv("WEBHOOKD_TEST_REDIS_SENTINEL_ADDRS") != "" && os.Getenv("WEBHOOKD_TEST_REDIS_CLUSTER_ADDRS") != "" {
		fmt.Printf("integration: Redis Sentinel %s (master %s) and Redis Cluster %s too\n",
			os.Getenv("WEBHOOKD_TEST_REDIS_SENTINEL_ADDRS"), os.Getenv("WEBHOOKD_TEST_REDIS_SENTINEL_MASTER"), os.Getenv("WEBHOOKD_TEST_REDIS_CLUSTER_ADDRS"))
	} else {
		fmt.Println("integration: no Redis Sentinel or Cluster: their tests skip (see internal/testenv/redisha.go)")
	}
	os.Exit(m.Run())
}

// suite is one test's world: services, a config of its own, the store.
type suite struct {
	t     *testing.T
	env   testenv.Env
	cfg   config.Config
	store *subscriptions.Store
	// secrets are every secret the test used (API keys, signing secrets,
	// the encryption key); none may appear in any log line.
	secrets []string
}

// newSuite runs with secrets encrypted at rest, as production should: every
// test's subscriptions go through the sealed path.
func newSuite(t *testing.T) *suite {
	t.Helper()
	env := testenv.Start(t)
	cfg := env.Config(t)
	key := make([]byte, subscriptions.EncryptionKeyBytes)
	_, _ = rand.Read(key)
	cfg.Subscriptions.EncryptionKey = base64.StdEncoding.EncodeToString(key)
	rdb, err := subscriptions.NewRedisClient(cfg.Redis)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	opts, err := subscriptions.ConfigOptions(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &suite{t: t, env: env, cfg: cfg, store: subscriptions.NewStore(rdb, cfg.Redis.KeyPrefix, opts...),
		secrets: []string{cfg.Subscriptions.EncryptionKey}}
}

func (s *suite) subscribe(sub subscriptions.Subscription) subscriptions.Subscription {
	s.t.Helper()
	if len(sub.EventTypes) == 0 {
		sub.EventTypes = event.Types[:]
	}
	sub.Enabled = true
	got, err := s.store.Add(context.Background(), sub)
	if err != nil {
		s.t.Fatalf("add subscription: %v", err)
	}
	s.remember(sub)
	return got
}

// remember adds sub's secrets to those no log line may contain.
func (s *suite) remember(sub subscriptions.Subscription) {
	for _, secret := range []string{sub.APIKey, sub.SigningSecret, strings.TrimPrefix(sub.SigningSecret, subscriptions.SigningSecretPrefix)} {
		if secret != "" {
			s.secrets = append(s.secrets, secret)
		}
	}
}

// start runs a worker on the suite's config; when the test ends, every log
// line it wrote is searched for the suite's API keys.
func (s *suite) start() *testenv.Worker {
	s.t.Helper()
	return s.watch(testenv.StartWorker(s.t, s.cfg))
}

func (s *suite) startNoWait() *testenv.Worker {
	s.t.Helper()
	return s.watch(testenv.StartWorkerNoWait(s.t, s.cfg))
}

func (s *suite) watch(w *testenv.Worker) *testenv.Worker {
	s.t.Cleanup(func() {
		for _, e := range w.Logs.All() {
			line := e.Message + fmt.Sprint(e.ContextMap())
			for _, secret := range s.secrets {
				if strings.Contains(line, secret) {
					s.t.Errorf("a secret (%s) in a log line: %s", config.Mask(secret), line)
				}
			}
		}
	})
	return w
}

// publish sends raw domain events to the first topic, keyed by key.
func (s *suite) publish(key string, values ...string) {
	s.t.Helper()
	msgs := make([]kafka.Message, len(values))
	for i, v := range values {
		msgs[i] = kafka.Message{Topic: s.cfg.Kafka.Topics[0], Key: []byte(key), Value: []byte(v)}
	}
	testenv.Produce(s.t, s.cfg.Kafka.Brokers, msgs...)
}

// waitHandled waits until the worker has handled n messages in all.
func waitHandled(t *testing.T, w *testenv.Worker, n int64) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, fmt.Sprintf("%d messages handled", n), func() bool {
		return w.Consumer().Stats().Handled.Load() >= n
	})
}

// committed reads the group's committed offset of each partition of topic.
func committed(t *testing.T, cfg config.Config, topic string) map[int]int64 {
	t.Helper()
	client := &kafka.Client{Addr: kafka.TCP(cfg.Kafka.Brokers...), Timeout: 10 * time.Second, Transport: &kafka.Transport{}}
	parts := make([]int, cfg.Kafka.Partitions)
	for i := range parts {
		parts[i] = i
	}
	res, err := client.OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{
		GroupID: cfg.Kafka.GroupID, Topics: map[string][]int{topic: parts},
	})
	if err != nil {
		t.Fatalf("offset fetch: %v", err)
	}
	out := map[int]int64{}
	for _, p := range res.Topics[topic] {
		out[p.Partition] = p.CommittedOffset
	}
	return out
}

// endOffsets reads the high watermark of each partition of topic.
func endOffsets(t *testing.T, cfg config.Config, topic string) map[int]int64 {
	t.Helper()
	client := &kafka.Client{Addr: kafka.TCP(cfg.Kafka.Brokers...), Timeout: 10 * time.Second, Transport: &kafka.Transport{}}
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for p := 0; p < cfg.Kafka.Partitions; p++ {
		req.Topics[topic] = append(req.Topics[topic], kafka.LastOffsetOf(p))
	}
	res, err := client.ListOffsets(context.Background(), req)
	if err != nil {
		t.Fatalf("list offsets: %v", err)
	}
	out := map[int]int64{}
	for _, p := range res.Topics[topic] {
		out[p.Partition] = p.LastOffset
	}
	return out
}

func compactJSON(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// payout builds a valid payout domain event.
func payout(tenant, campaign, requestID, player string) string {
	return fmt.Sprintf(`{"tenant_id":%q,"event_type":"PRIZE_PAYOUT_SUCCEEDED","campaign_id":%q,"request_id":%q,`+
		`"player_id":%q,"player_currency":"EUR","status":"SUCCESS","prize_type":"cash","amount":10.00,"bonus_id":1}`,
		tenant, campaign, requestID, player)
}

func optIn(tenant, campaign, player string) string {
	return fmt.Sprintf(`{"tenant_id":%q,"event_type":"PLAYER_OPTED_IN","campaign_id":%q,"player_id":%q}`, tenant, campaign, player)
}
