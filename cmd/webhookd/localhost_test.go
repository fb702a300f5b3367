package main

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/unibo/webhookd/internal/testenv"
)

func TestBinaryLocalhostOpenedByAllowedCIDRs(t *testing.T) {
	bin := binary(t)
	env := testenv.Start(t)
	cfg := env.Config(t)
	cfg.Delivery.AllowedCIDRs = []string{"127.0.0.0/8"}
	rc := testenv.NewReceiver(t)
	u, _ := url.Parse(rc.URL)
	hook := "http://localhost:" + u.Port() + "/hook"
	benv := testenv.BinaryEnv(t, cfg)

	closed := cfg
	closed.Delivery.AllowedCIDRs = nil
	cenv := testenv.BinaryEnv(t, closed)
	_, addErr, code := runBinary(t, bin, cenv, "subscriptions", "add", "--tenant", "acme", "--url", hook, "--events", "PLAYER_OPTED_IN")
	const refusal = "host localhost is blocked by the egress policy: loopback (localhost, 127.0.0.1); delivery.allowed_cidrs (WEBHOOKD_DELIVERY_ALLOWED_CIDRS) opens it with 127.0.0.0/8"
	if code == 0 || !strings.Contains(addErr, refusal) {
		t.Fatalf("add without the range: exit %d, %q", code, addErr)
	}
	_, sendErr, code := runBinary(t, bin, cenv, "send-test", "--url", hook, "--event", "PLAYER_OPTED_IN")
	if code == 0 || !strings.Contains(sendErr, refusal) || rc.Count() != 0 {
		t.Fatalf("send-test without the range: exit %d, %q, %d requests", code, sendErr, rc.Count())
	}

	_, errOut, code := runBinary(t, bin, benv, "subscriptions", "add", "--tenant", "acme", "--url", hook, "--events", "PLAYER_OPTED_IN")
	if code != 0 {
		t.Fatalf("add with 127.0.0.0/8 allowed: exit %d, %s", code, errOut)
	}
	out, errOut, code := runBinary(t, bin, benv, "send-test", "--url", hook, "--event", "PLAYER_OPTED_IN")
	if code != 0 || rc.Count() != 1 {
		t.Fatalf("send-test: exit %d, %d requests\n%s%s", code, rc.Count(), out, errOut)
	}

	p := testenv.StartBinary(t, bin, benv)
	p.WaitReady(t, 60*time.Second)
	testenv.Produce(t, env.Brokers, kafka.Message{Topic: cfg.Kafka.Topics[1], Key: []byte("p1"),
		Value: []byte(`{"tenant_id":"acme","event_type":"PLAYER_OPTED_IN","campaign_id":"c","player_id":"p1"}`)})
	testenv.Eventually(t, 30*time.Second, "the delivery to localhost", func() bool { return rc.Count() == 2 })
	got := rc.Requests()[1]
	if got.Path != "/hook" || !strings.Contains(string(got.Body), `"player_id":"p1"`) {
		t.Fatalf("delivery to %s: %s", got.Path, got.Body)
	}
	if code, err := p.Terminate(30 * time.Second); err != nil || code != 0 {
		t.Fatalf("exit after SIGTERM: %d, %v", code, err)
	}
}
