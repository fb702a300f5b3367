package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unibo/webhookd/config"
)

// Secure names the secured endpoints of the real services, as
// scripts/services-up.sh starts them beside the plaintext ports:
//
//	WEBHOOKD_TEST_KAFKA_SASL_BROKERS      SASL_PLAINTEXT listener (127.0.0.1:9094)
//	WEBHOOKD_TEST_KAFKA_SASL_SSL_BROKERS  SASL_SSL listener (127.0.0.1:9095)
//	WEBHOOKD_TEST_KAFKA_SASL_USERNAME     a user with SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN credentials
//	WEBHOOKD_TEST_KAFKA_SASL_PASSWORD
//	WEBHOOKD_TEST_REDIS_TLS_ADDR          Redis's TLS port (127.0.0.1:6380)
//	WEBHOOKD_TEST_REDIS_USERNAME          a Redis ACL user
//	WEBHOOKD_TEST_REDIS_PASSWORD
//	WEBHOOKD_TEST_TLS_DIR                 ca.crt (signs both servers' certificates), client.crt, client.key
//
// There are no in-process stand-ins for these: the tests that need them skip
// when they are unset.
type Secure struct {
	KafkaSASLBrokers    []string
	KafkaSASLSSLBrokers []string
	KafkaUsername       string
	KafkaPassword       string
	RedisTLSAddr        string
	RedisUsername       string
	RedisPassword       string
	TLSDir              string
}

func secureFromEnv() Secure {
	split := func(s string) []string {
		if s == "" {
			return nil
		}
		return strings.Split(s, ",")
	}
	return Secure{
		KafkaSASLBrokers:    split(os.Getenv("WEBHOOKD_TEST_KAFKA_SASL_BROKERS")),
		KafkaSASLSSLBrokers: split(os.Getenv("WEBHOOKD_TEST_KAFKA_SASL_SSL_BROKERS")),
		KafkaUsername:       os.Getenv("WEBHOOKD_TEST_KAFKA_SASL_USERNAME"),
		KafkaPassword:       os.Getenv("WEBHOOKD_TEST_KAFKA_SASL_PASSWORD"),
		RedisTLSAddr:        os.Getenv("WEBHOOKD_TEST_REDIS_TLS_ADDR"),
		RedisUsername:       os.Getenv("WEBHOOKD_TEST_REDIS_USERNAME"),
		RedisPassword:       os.Getenv("WEBHOOKD_TEST_REDIS_PASSWORD"),
		TLSDir:              os.Getenv("WEBHOOKD_TEST_TLS_DIR"),
	}
}

// SecureKafka returns the secured Kafka listeners, or skips the test.
func SecureKafka(t testing.TB) Secure {
	t.Helper()
	s := secureFromEnv()
	if len(s.KafkaSASLBrokers) == 0 || len(s.KafkaSASLSSLBrokers) == 0 || s.KafkaUsername == "" || s.KafkaPassword == "" || s.TLSDir == "" {
		t.Skip("secured Kafka not configured: set WEBHOOKD_TEST_KAFKA_SASL_BROKERS, WEBHOOKD_TEST_KAFKA_SASL_SSL_BROKERS, " +
			"WEBHOOKD_TEST_KAFKA_SASL_USERNAME, WEBHOOKD_TEST_KAFKA_SASL_PASSWORD and WEBHOOKD_TEST_TLS_DIR (scripts/services-up.sh starts them; .ci/run sets them)")
	}
	return s
}

// SecureRedis returns Redis's TLS port and ACL user, or skips the test.
func SecureRedis(t testing.TB) Secure {
	t.Helper()
	s := secureFromEnv()
	if s.RedisTLSAddr == "" || s.RedisUsername == "" || s.RedisPassword == "" || s.TLSDir == "" {
		t.Skip("secured Redis not configured: set WEBHOOKD_TEST_REDIS_TLS_ADDR, WEBHOOKD_TEST_REDIS_USERNAME, " +
			"WEBHOOKD_TEST_REDIS_PASSWORD and WEBHOOKD_TEST_TLS_DIR (scripts/services-up.sh starts them; .ci/run sets them)")
	}
	return s
}

// File is a file of the TLS directory (ca.crt, client.crt, client.key).
func (s Secure) File(name string) string { return filepath.Join(s.TLSDir, name) }

// KafkaSASL points cfg at the SASL_PLAINTEXT listener with mechanism.
func (s Secure) KafkaSASL(cfg *config.Config, mechanism string) {
	cfg.Kafka.Brokers = s.KafkaSASLBrokers
	cfg.Kafka.SASL = config.SASL{Mechanism: mechanism, Username: s.KafkaUsername, Password: s.KafkaPassword}
	cfg.Kafka.TLS = config.TLS{}
}

// KafkaSASLSSL points cfg at the SASL_SSL listener with mechanism, trusting
// the test CA.
func (s Secure) KafkaSASLSSL(cfg *config.Config, mechanism string) {
	s.KafkaSASL(cfg, mechanism)
	cfg.Kafka.Brokers = s.KafkaSASLSSLBrokers
	cfg.Kafka.TLS = config.TLS{Enabled: true, CAFile: s.File("ca.crt")}
}

// RedisTLS points cfg at Redis's TLS port as the ACL user, trusting the
// test CA.
func (s Secure) RedisTLS(cfg *config.Config) {
	cfg.Redis.Addr = s.RedisTLSAddr
	cfg.Redis.Username, cfg.Redis.Password = s.RedisUsername, s.RedisPassword
	cfg.Redis.TLS = config.TLS{Enabled: true, CAFile: s.File("ca.crt")}
}
