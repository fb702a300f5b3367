package integration

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/unibo/webhookd/app"
	"github.com/unibo/webhookd/config"
	"github.com/unibo/webhookd/consumer"
	"github.com/unibo/webhookd/internal/testenv"
	"github.com/unibo/webhookd/kafkaconn"
	"github.com/unibo/webhookd/subscriptions"
)

// These tests run over the secured listeners scripts/services-up.sh starts
// beside the plaintext ones (see testenv.Secure); they skip, saying which
// variables to set, when those are not configured.

// useRedis points the suite's config and store at another Redis setup; the
// store keeps the suite's rules (secrets sealed at rest).
func (s *suite) useRedis(set func(*config.Config)) {
	s.t.Helper()
	set(&s.cfg)
	if err := s.cfg.Validate(); err != nil {
		s.t.Fatalf("config: %v", err)
	}
	rdb, err := subscriptions.NewRedisClient(s.cfg.Redis)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { _ = rdb.Close() })
	opts, err := subscriptions.ConfigOptions(s.cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	s.store = subscriptions.NewStore(rdb, s.cfg.Redis.KeyPrefix, opts...)
	if s.cfg.Redis.Password != "" {
		s.secrets = append(s.secrets, s.cfg.Redis.Password)
	}
}

// useKafka points the suite's config at another Kafka listener.
func (s *suite) useKafka(set func(*config.Config)) {
	s.t.Helper()
	set(&s.cfg)
	if err := s.cfg.Validate(); err != nil {
		s.t.Fatalf("config: %v", err)
	}
	s.secrets = append(s.secrets, s.cfg.Kafka.SASL.Password)
}

// Every Kafka connection of the worker authenticates: topic creation, the
// consumer groups and partition readers, the sink's writer (a dead letter),
// and then the dead-letter reader and the lag `webhookd status` prints.
func TestWorkerOverKafkaSASL(t *testing.T) {
	sec := testenv.SecureKafka(t)
	for _, tc := range []struct {
		name, mechanism string
		tls             bool
	}{
		{"SCRAM-SHA-256", config.SASLScramSHA256, false},
		{"SCRAM-SHA-512", config.SASLScramSHA512, false},
		{"PLAIN over TLS", config.SASLPlain, true},
		{"SCRAM-SHA-512 over TLS", config.SASLScramSHA512, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSuite(t)
			s.useKafka(func(cfg *config.Config) {
				if tc.tls {
					sec.KafkaSASLSSL(cfg, tc.mechanism)
				} else {
					sec.KafkaSASL(cfg, tc.mechanism)
				}
			})
			ok := testenv.NewReceiver(t)
			failing := testenv.NewReceiver(t)
			failing.SetRespond(func(testenv.Request) int { return http.StatusInternalServerError })
			s.subscribe(subscriptions.Subscription{TenantID: "acme", URL: ok.URL})
			dead := s.subscribe(subscriptions.Subscription{TenantID: "acme", URL: failing.URL})
			w := s.start()

			testenv.ProduceWith(t, s.cfg.Kafka, kafka.Message{Topic: s.cfg.Kafka.Topics[0], Key: []byte("p1"),
				Value: []byte(payout("acme", "c1", "sasl-"+tc.mechanism, "p1"))})
			waitHandled(t, w, 1)
			if ok.Count() != 1 || failing.Count() != 1 {
				t.Fatalf("deliveries: %d to the healthy endpoint, %d to the failing one; want 1 each", ok.Count(), failing.Count())
			}
			if got := deadLetters(t, s, dead.ID); len(got) != 1 || got[0].RequestID != "sasl-"+tc.mechanism {
				t.Fatalf("dead letters of the failing subscription: %+v, want the one event", got)
			}
			testenv.Eventually(t, 15*time.Second, "the committed offset in the group's lag", func() bool {
				lags, err := consumer.GroupLag(context.Background(), s.cfg.Kafka, s.cfg.Kafka.GroupID, s.cfg.Kafka.Topics)
				if err != nil {
					t.Fatalf("group lag: %v", err)
				}
				var end, committed int64
				for _, l := range lags {
					end += l.End
					committed += max(l.Committed, 0)
				}
				return end == 1 && committed == 1
			})
		})
	}
}

// A wrong password or an untrusted broker certificate stops the worker at
// startup with an error that says what is wrong (and never shows the
// password), instead of retrying for ever.
func TestKafkaWrongCredentialsStopTheWorker(t *testing.T) {
	sec := testenv.SecureKafka(t)
	otherCA, _, _ := newCA(t)
	for _, tc := range []struct {
		name string
		set  func(*config.Config)
		want string
	}{
		{"wrong SCRAM-SHA-256 password", func(cfg *config.Config) {
			sec.KafkaSASL(cfg, config.SASLScramSHA256)
			cfg.Kafka.SASL.Password = "wrong-password-" + testenv.ID()
		}, "SASL Authentication failed"},
		{"wrong SCRAM-SHA-512 password over TLS", func(cfg *config.Config) {
			sec.KafkaSASLSSL(cfg, config.SASLScramSHA512)
			cfg.Kafka.SASL.Password = "wrong-password-" + testenv.ID()
		}, "SASL Authentication failed"},
		{"wrong password, topics not created by webhookd", func(cfg *config.Config) {
			sec.KafkaSASL(cfg, config.SASLScramSHA256)
			cfg.Kafka.SASL.Password = "wrong-password-" + testenv.ID()
			cfg.Kafka.CreateTopics = false // the consumer groups are the first to connect
		}, "SASL Authentication failed"},
		{"unknown user", func(cfg *config.Config) {
			sec.KafkaSASL(cfg, config.SASLScramSHA512)
			cfg.Kafka.SASL.Username = "nobody-" + testenv.ID()
		}, "SASL Authentication failed"},
		{"broker certificate from another CA", func(cfg *config.Config) {
			sec.KafkaSASLSSL(cfg, config.SASLScramSHA256)
			cfg.Kafka.TLS.CAFile = otherCA
		}, "certificate signed by unknown authority"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSuite(t)
			s.useKafka(tc.set)
			core, logs := observer.New(zapcore.DebugLevel)
			w, err := app.New(s.cfg, zap.New(core))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			err = w.Run(ctx)
			t.Logf("worker stopped with: %v", err)
			switch {
			case ctx.Err() != nil:
				t.Fatalf("the worker kept retrying for 60s: %v", err)
			case err == nil:
				t.Fatal("the worker ran with bad Kafka credentials")
			case !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "kafka.sasl"):
				t.Fatalf("error does not say %q and point at kafka.sasl/kafka.tls: %v", tc.want, err)
			case !kafkaconn.IsAuthError(err):
				t.Fatalf("kafkaconn.IsAuthError(%v) = false", err)
			case strings.Contains(err.Error(), s.cfg.Kafka.SASL.Password):
				t.Fatalf("error shows the password: %v", err)
			}
			for _, e := range logs.All() {
				if line := e.Message + fmt.Sprint(e.ContextMap()); strings.Contains(line, s.cfg.Kafka.SASL.Password) {
					t.Fatalf("password in a log line: %s", line)
				}
			}
		})
	}
}

// The store over Redis's TLS port as an ACL user: an optimistic-transaction
// write, a read, and the server agreeing on who we are.
func TestStoreOverRedisTLSWithACLUser(t *testing.T) {
	sec := testenv.SecureRedis(t)
	for _, tc := range []struct {
		name string
		set  func(*config.Config)
	}{
		{"server TLS", sec.RedisTLS},
		{"mutual TLS", func(cfg *config.Config) {
			sec.RedisTLS(cfg)
			cfg.Redis.TLS.CertFile, cfg.Redis.TLS.KeyFile = sec.File("client.crt"), sec.File("client.key")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSuite(t)
			s.useRedis(tc.set)
			ctx := context.Background()
			added := s.subscribe(subscriptions.Subscription{TenantID: "acme", URL: "https://hooks.acme.example/tls"})
			if _, err := s.store.Update(ctx, added.ID, func(sub *subscriptions.Subscription) error {
				sub.URL = "https://hooks.acme.example/tls-updated"
				return nil
			}); err != nil {
				t.Fatalf("update over TLS: %v", err)
			}
			snap, err := s.store.Load(ctx)
			if err != nil {
				t.Fatalf("load over TLS: %v", err)
			}
			if len(snap.Subscriptions) != 1 || snap.Subscriptions[0].URL != "https://hooks.acme.example/tls-updated" || snap.Version != 2 {
				t.Fatalf("table over TLS: %+v", snap)
			}
			rdb, err := subscriptions.NewRedisClient(s.cfg.Redis)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = rdb.Close() }()
			if who, err := rdb.Do(ctx, "ACL", "WHOAMI").Text(); err != nil || who != sec.RedisUsername {
				t.Fatalf("ACL WHOAMI = %q, %v; want %q", who, err, sec.RedisUsername)
			}
		})
	}
}

// What goes wrong with Redis's TLS or ACL settings is said plainly, without
// the password.
func TestRedisTLSAndACLFailuresAreClear(t *testing.T) {
	sec := testenv.SecureRedis(t)
	otherCA, otherCert, otherKey := newCA(t)
	for _, tc := range []struct {
		name string
		set  func(*config.Config)
		want string
		// or is a second answer that is as true: with TLS 1.3 the server
		// checks a client certificate after the client's handshake is over
		// and then closes the connection, so the client reads either the
		// server's alert or, when the close overtook it, a reset.
		or string
	}{
		{"server certificate from another CA", func(cfg *config.Config) {
			sec.RedisTLS(cfg)
			cfg.Redis.TLS.CAFile = otherCA
		}, "certificate signed by unknown authority", ""},
		{"wrong password", func(cfg *config.Config) {
			sec.RedisTLS(cfg)
			cfg.Redis.Password = "wrong-password-" + testenv.ID()
		}, "WRONGPASS", ""},
		{"client certificate from another CA", func(cfg *config.Config) {
			sec.RedisTLS(cfg)
			cfg.Redis.TLS.CertFile, cfg.Redis.TLS.KeyFile = otherCert, otherKey
		}, "tls: unknown certificate authority", "connection reset by peer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testenv.Start(t).Config(t)
			tc.set(&cfg)
			if err := cfg.Validate(); err != nil {
				t.Fatalf("config: %v", err)
			}
			rdb, err := subscriptions.NewRedisClient(cfg.Redis)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = rdb.Close() }()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err = subscriptions.NewStore(rdb, cfg.Redis.KeyPrefix).Load(ctx)
			t.Logf("load failed with: %v", err)
			switch {
			case err == nil:
				t.Fatal("loaded the table")
			case errors.Is(err, context.DeadlineExceeded):
				t.Fatalf("hung instead of failing: %v", err)
			case !strings.Contains(err.Error(), tc.want) && (tc.or == "" || !strings.Contains(err.Error(), tc.or)):
				t.Fatalf("error does not say %q: %v", tc.want, err)
			case strings.Contains(err.Error(), cfg.Redis.Password):
				t.Fatalf("error shows the password: %v", err)
			}
		})
	}
}

// The whole worker with TLS everywhere: SCRAM over TLS to Kafka, an ACL
// user over TLS to Redis; a subscription added while it runs reaches it
// (the change notification and the version poll go over TLS too).
func TestWorkerWithTLSEverywhere(t *testing.T) {
	sec := testenv.SecureKafka(t)
	testenv.SecureRedis(t)
	s := newSuite(t)
	s.useKafka(func(cfg *config.Config) { sec.KafkaSASLSSL(cfg, config.SASLScramSHA256) })
	s.useRedis(sec.RedisTLS)
	first := testenv.NewReceiver(t)
	s.subscribe(subscriptions.Subscription{TenantID: "acme", URL: first.URL})
	w := s.start()

	later := testenv.NewReceiver(t)
	s.subscribe(subscriptions.Subscription{TenantID: "acme", URL: later.URL})
	testenv.Eventually(t, 5*time.Second, "the new subscription in the worker's table", func() bool {
		return strings.HasPrefix(check(w, "subscriptions").Detail, "2 subscriptions")
	})
	testenv.ProduceWith(t, s.cfg.Kafka, kafka.Message{Topic: s.cfg.Kafka.Topics[0], Key: []byte("p1"),
		Value: []byte(payout("acme", "c1", "tls-everywhere", "p1"))})
	waitHandled(t, w, 1)
	if first.Count() != 1 || later.Count() != 1 {
		t.Fatalf("deliveries %d and %d, want 1 each", first.Count(), later.Count())
	}
}

// newCA writes a CA certificate unrelated to the test services' one, and a
// client certificate and key it signed; it returns their paths.
func newCA(t *testing.T) (caFile, certFile, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "not the test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "webhookd"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(leafKey)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.crt", "CERTIFICATE", caDER), write("client.crt", "CERTIFICATE", leafDER), write("client.key", "EC PRIVATE KEY", keyDER)
}
