package integration

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/unibo/webhookd/delivery"
	"github.com/unibo/webhookd/event"
	"github.com/unibo/webhookd/internal/testenv"
	"github.com/unibo/webhookd/subscriptions"
)

// The egress guard runs on the resolved address at connect time: a
// subscription whose host name resolves to loopback (stored before the
// guard, or by a tool that skipped the URL check) reaches nothing; each
// delivery is dead-lettered as address_blocked, naming the rule.
func TestEgressGuardBlocksNamesResolvingToLoopback(t *testing.T) {
	s := newSuite(t)
	s.cfg.Delivery.AllowedCIDRs = nil // production default
	rc := testenv.NewReceiver(t)
	// Written without the deployment's policy, as an older version would have.
	rdb, err := subscriptions.NewRedisClient(s.cfg.Redis)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	unguarded := subscriptions.NewStore(rdb, s.cfg.Redis.KeyPrefix)
	opts, _ := subscriptions.ConfigOptions(s.cfg)
	sealed := subscriptions.NewStore(rdb, s.cfg.Redis.KeyPrefix, opts...)
	if _, err := sealed.Add(context.Background(), subscriptions.Subscription{TenantID: "acme", URL: rc.URL, EventTypes: event.Types[:], Enabled: true}); err == nil {
		t.Fatal("the store accepted a literal loopback URL under the production policy")
	}
	sub, err := unguarded.Add(context.Background(), subscriptions.Subscription{TenantID: "acme", EventTypes: event.Types[:], Enabled: true,
		URL: strings.Replace(rc.URL, "127.0.0.1", "localhost", 1) + "/hook"})
	if err != nil {
		t.Fatal(err)
	}
	w := s.start()
	s.publish("k", payout("acme", "c", "r1", "p1"), payout("acme", "c", "r2", "p1"), optIn("acme", "c", "p2"))
	waitHandled(t, w, 3)
	var dead []delivery.Record
	testenv.Eventually(t, 10*time.Second, "3 dead letters", func() bool {
		dead = deadLetters(t, s, sub.ID)
		return len(dead) == 3
	})
	for _, d := range dead {
		if d.Reason != delivery.ReasonBlocked || !strings.Contains(d.LastError, "loopback") || d.LastStatus != 0 {
			t.Errorf("dead letter %+v, want reason %s naming the loopback rule", d, delivery.ReasonBlocked)
		}
	}
	if rc.Count() != 0 {
		t.Fatalf("%d requests reached the loopback receiver", rc.Count())
	}
	if w.Deliveries().Retried.Load() != 0 {
		t.Fatal("blocked deliveries were retried")
	}
}

// A signed subscription's deliveries verify with the partner's copy of the
// secret, exactly as the README's snippets do it; the secret is sealed in
// Redis, and no log line carries it.
func TestSignedDeliveriesVerifyAndSecretsStaySealed(t *testing.T) {
	s := newSuite(t)
	rc := testenv.NewReceiver(t)
	secret := subscriptions.NewSigningSecret()
	sub := s.subscribe(subscriptions.Subscription{TenantID: "acme", URL: rc.URL, APIKey: "sk_live_" + testenv.ID(), SigningSecret: secret})

	raw, err := s.env.Redis(t).HGet(context.Background(), s.cfg.Redis.KeyPrefix+"subscriptions", sub.ID).Result()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(raw, sub.APIKey) || strings.Contains(raw, strings.TrimPrefix(secret, "whsec_")) {
		t.Fatalf("secrets stored in clear: %s", raw)
	}

	w := s.start()
	for i := range 5 {
		s.publish(fmt.Sprint("k", i), payout("acme", "c", fmt.Sprint("r", i), "p1"))
	}
	waitHandled(t, w, 5)
	testenv.Eventually(t, 10*time.Second, "5 deliveries", func() bool { return rc.Count() == 5 })
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	for _, r := range rc.Requests() {
		id, ts := r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp")
		sent, err := strconv.ParseInt(ts, 10, 64)
		if err != nil || time.Since(time.Unix(sent, 0)).Abs() > time.Minute {
			t.Errorf("webhook-timestamp %q is not a current Unix time", ts)
		}
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(id + "." + ts + "." + string(r.Body)))
		if r.Header.Get("webhook-signature") != "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)) {
			t.Errorf("signature %q does not verify", r.Header.Get("webhook-signature"))
		}
		if r.Header.Get("Authorization") != "Bearer "+sub.APIKey {
			t.Errorf("Authorization %q: the sealed API key did not come back", r.Header.Get("Authorization"))
		}
	}
}

// An oversized message is never decoded: it goes to the invalid topic with
// its reason, and the events behind it flow.
func TestOversizedMessagesGoToTheInvalidTopic(t *testing.T) {
	s := newSuite(t)
	s.cfg.Kafka.Partitions = 1
	s.cfg.Consumer.MaxMessageBytes = 4096
	rc := testenv.NewReceiver(t)
	s.subscribe(subscriptions.Subscription{TenantID: "acme", URL: rc.URL})
	w := s.start()
	huge := strings.Replace(payout("acme", "c", "huge", "p1"), `"player_currency"`, `"padding":"`+strings.Repeat("x", 5000)+`","player_currency"`, 1)
	// Over the invalid topic's own cap (512 KiB): kept cut, with its length.
	giant := strings.Replace(huge, strings.Repeat("x", 5000), strings.Repeat("y", 700<<10), 1)
	s.publish("k", huge, giant, payout("acme", "c", "after", "p1"))
	waitHandled(t, w, 3)
	testenv.Eventually(t, 5*time.Second, "the valid event delivered", func() bool { return rc.Count() == 1 })
	inv := readTopic(t, s.cfg.Kafka.Brokers, s.cfg.Consumer.InvalidTopic, 2)
	if string(inv[0].Value) != huge || !strings.Contains(header(inv[0], "webhookd-reason"), "consumer.max_message_bytes") {
		t.Fatalf("invalid topic got %d bytes, reason %q", len(inv[0].Value), header(inv[0], "webhookd-reason"))
	}
	if len(inv[1].Value) != 512<<10 || header(inv[1], "webhookd-truncated-from-bytes") != fmt.Sprint(len(giant)) || header(inv[1], "webhookd-source-offset") != "1" {
		t.Fatalf("the 700 KiB message: %d bytes kept, headers %v", len(inv[1].Value), inv[1].Headers)
	}
}
