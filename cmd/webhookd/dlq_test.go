package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"gopkg.in/yaml.v3"

	"github.com/unibo/webhookd/config"
	"github.com/unibo/webhookd/consumer"
	"github.com/unibo/webhookd/delivery"
	"github.com/unibo/webhookd/event"
	"github.com/unibo/webhookd/internal/testenv"
)

func TestReplayOfAnUnknownSubscriptionPrintsNoSummary(t *testing.T) {
	subsEnv(t)
	var out, errOut bytes.Buffer
	root := newRootCmd(&out, &errOut)
	root.SetArgs([]string{"replay", "--subscription", "nope"})
	err := root.ExecuteContext(context.Background())
	if err == nil || !strings.Contains(err.Error(), `"nope": subscription not found`) {
		t.Fatalf("err %v, want subscription not found", err)
	}
	if out.Len() != 0 {
		t.Fatalf("printed %q before the error", out.String())
	}
}

func TestDLQListOutputFormats(t *testing.T) {
	env := testenv.Start(t)
	cfg := env.Config(t)
	kcfg := cfg.Kafka
	kcfg.Topics = []string{cfg.Delivery.DLQ.Topic}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := consumer.AwaitTopics(ctx, kcfg, kcfg.Topics, zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	rec := delivery.Record{
		WebhookID: "wh_1", SubscriptionID: "sub_a", TenantID: "acme", EventType: event.PlayerOptedIn,
		Body: json.RawMessage(`{"event_type":"PLAYER_OPTED_IN","player_id":"p1"}`), Attempts: 3, LastStatus: 503,
		Reason: delivery.ReasonExhausted, FirstAttempt: at, LastAttempt: at, DeadAt: at,
	}
	raw, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Produce(t, env.Brokers, kafka.Message{Topic: cfg.Delivery.DLQ.Topic, Key: []byte("acme"), Value: raw})
	for k, v := range map[string]string{
		"kafka.brokers": strings.Join(cfg.Kafka.Brokers, ","), "delivery.dlq.topic": cfg.Delivery.DLQ.Topic,
	} {
		t.Setenv(config.EnvName(k), v)
	}
	dlq := func(output string) (string, error) {
		var out, errOut bytes.Buffer
		root := newRootCmd(&out, &errOut)
		root.SetArgs([]string{"dlq", "list", "-o", output})
		err := root.ExecuteContext(context.Background())
		return out.String(), err
	}

	out, err := dlq("json")
	if err != nil || strings.Contains(out, "not_before") || !strings.Contains(out, `"webhook_id":"wh_1"`) {
		t.Errorf("-o json: %v\n%s", err, out)
	}
	out, err = dlq("yaml")
	var got struct {
		WebhookID string `yaml:"webhook_id"`
		Attempts  int    `yaml:"attempts"`
		DeadAt    string `yaml:"dead_lettered_at"`
		Body      struct {
			PlayerID string `yaml:"player_id"`
		} `yaml:"body"`
	}
	if err != nil || yaml.Unmarshal([]byte(out), &got) != nil || got.WebhookID != "wh_1" || got.Attempts != 3 ||
		got.Body.PlayerID != "p1" || got.DeadAt != "2026-05-01T12:00:00Z" || strings.Contains(out, "DEAD_AT") || strings.Contains(out, "{") {
		t.Errorf("-o yaml: %v, decoded %+v from:\n%s", err, got, out)
	}
	if out, err := dlq("xml"); err == nil || !strings.Contains(err.Error(), "-o must be table, json or yaml") || out != "" {
		t.Errorf("-o xml: %v\n%s", err, out)
	}
	// Kafka down: the error alone, no empty table before it.
	t.Setenv(config.EnvName("kafka.brokers"), "127.0.0.1:1")
	if out, err := dlq("table"); err == nil || out != "" {
		t.Errorf("Kafka down: %v, printed %q", err, out)
	}
}
