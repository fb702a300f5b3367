package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "webhookd.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultsAreValidAndDocumented(t *testing.T) {
	cfg, err := Load("")
	if err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	if cfg.Kafka.GroupID != "webhookd" || cfg.Kafka.Partitions != 12 || !cfg.Kafka.CreateTopics ||
		cfg.Delivery.Timeout != 30*time.Second || cfg.Ops.Addr != ":8081" ||
		!reflect.DeepEqual(cfg.Kafka.Topics, []string{"prize-payouts", "campaign-participation"}) {
		t.Fatalf("unexpected defaults: %+v", cfg)
	}
	// Every key of the struct has an Option (default + help), and back.
	keys := cfg.Masked()
	documented := map[string]bool{}
	for _, o := range Options {
		documented[o.Key] = true
		if _, ok := keys[o.Key]; !ok {
			t.Errorf("option %s is not a config key", o.Key)
		}
		if o.Help == "" {
			t.Errorf("option %s has no help", o.Key)
		}
	}
	for k := range keys {
		if !documented[k] {
			t.Errorf("config key %s has no Option", k)
		}
	}
}

func TestEnvironmentOverridesFileOverridesDefaults(t *testing.T) {
	path := writeFile(t, `
kafka:
  brokers: [file-broker:9092]
  group_id: from-file
  partitions: 6
delivery:
  timeout: 10s
`)
	t.Setenv("WEBHOOKD_KAFKA_BROKERS", "b1:9092, b2:9092,b3:9092")
	t.Setenv("WEBHOOKD_KAFKA_TOPICS", "payouts,participation")
	t.Setenv("WEBHOOKD_KAFKA_PARTITIONS", "24")
	t.Setenv("WEBHOOKD_REDIS_ADDR", "redis.internal:6380")
	t.Setenv("WEBHOOKD_REDIS_DB", "3")
	t.Setenv("WEBHOOKD_OPS_ADDR", "0.0.0.0:9000")
	t.Setenv("WEBHOOKD_DELIVERY_TIMEOUT", "45s")
	t.Setenv("WEBHOOKD_SHUTDOWN_TIMEOUT", "20s")
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.Kafka.Brokers, []string{"b1:9092", "b2:9092", "b3:9092"}) {
		t.Errorf("brokers %q", cfg.Kafka.Brokers)
	}
	if !reflect.DeepEqual(cfg.Kafka.Topics, []string{"payouts", "participation"}) {
		t.Errorf("topics %q", cfg.Kafka.Topics)
	}
	if cfg.Kafka.GroupID != "from-file" {
		t.Errorf("group id %q: the file's value should stand when env is unset", cfg.Kafka.GroupID)
	}
	if cfg.Kafka.Partitions != 24 || cfg.Redis.Addr != "redis.internal:6380" || cfg.Redis.DB != 3 ||
		cfg.Ops.Addr != "0.0.0.0:9000" || cfg.Delivery.Timeout != 45*time.Second || cfg.ShutdownTimeout != 20*time.Second {
		t.Errorf("env not applied: %+v", cfg)
	}
	t.Setenv("WEBHOOKD_KAFKA_GROUP_ID", "from-env")
	if cfg, _ = Load(path); cfg.Kafka.GroupID != "from-env" {
		t.Errorf("env should override the file: %q", cfg.Kafka.GroupID)
	}
}

func TestInvalidConfigNamesTheKey(t *testing.T) {
	cases := []struct {
		env, value, key string
	}{
		{"WEBHOOKD_KAFKA_PARTITIONS", "0", "kafka.partitions"},
		{"WEBHOOKD_KAFKA_PARTITIONS", "twelve", "kafka.partitions"},
		{"WEBHOOKD_KAFKA_BROKERS", "", "kafka.brokers"},
		{"WEBHOOKD_KAFKA_BROKERS", "no-port", "kafka.brokers"},
		{"WEBHOOKD_KAFKA_TOPICS", "ok,bad topic", "kafka.topics"},
		{"WEBHOOKD_KAFKA_GROUP_ID", " ", "kafka.group_id"},
		{"WEBHOOKD_REDIS_DB", "-1", "redis.db"},
		{"WEBHOOKD_REDIS_ADDR", "", "redis.addr"},
		{"WEBHOOKD_DELIVERY_TIMEOUT", "soon", "delivery.timeout"},
		{"WEBHOOKD_DELIVERY_TIMEOUT", "0s", "delivery.timeout"},
		{"WEBHOOKD_OPS_ADDR", "8081", "ops.addr"},
		{"WEBHOOKD_LOG_FORMAT", "xml", "log.format"},
		{"WEBHOOKD_KAFKA_START_OFFSET", "middle", "kafka.start_offset"},
		{"WEBHOOKD_CONSUMER_MAX_IN_FLIGHT", "0", "consumer.max_in_flight"},
	}
	for _, tc := range cases {
		t.Run(tc.env+"="+tc.value, func(t *testing.T) {
			t.Setenv(tc.env, tc.value)
			_, err := Load("")
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.key) {
				t.Fatalf("error does not name %s: %v", tc.key, err)
			}
		})
	}
}

func TestUnknownFileKeyIsAnError(t *testing.T) {
	_, err := Load(writeFile(t, "kafka:\n  brokerz: [a:1]\n"))
	if err == nil || !strings.Contains(err.Error(), "brokerz") {
		t.Fatalf("typo not reported: %v", err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Fatal("missing file accepted")
	}
}

func TestLoggedConfigMasksSecrets(t *testing.T) {
	t.Setenv("WEBHOOKD_REDIS_PASSWORD", "hunter2-super-secret")
	cfg, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.InfoLevel)
	zap.New(core).Info("starting", zap.Object("config", cfg))
	entry := logs.All()[0]
	got := entry.ContextMap()["config"].(map[string]any)
	if got["redis.password"] == "hunter2-super-secret" {
		t.Fatal("password logged in clear")
	}
	if got["kafka.group_id"] != "webhookd" {
		t.Fatalf("config fields missing from the log line: %v", got)
	}
}

func TestEnvName(t *testing.T) {
	if got := EnvName("kafka.group_id"); got != "WEBHOOKD_KAFKA_GROUP_ID" {
		t.Fatal(got)
	}
}

func TestDocsConfigurationIsGenerated(t *testing.T) {
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	if string(doc) != ReferenceDoc() {
		t.Fatal("docs/configuration.md differs from config.ReferenceDoc(); regenerate it with `go run ./cmd/webhookd config reference --doc > docs/configuration.md`")
	}
}

// The admin API is off by default; turning it on without a strong token is
// a startup error naming the key, and the token is never printed.
func TestAdminAPIIsOffByDefaultAndNeedsAToken(t *testing.T) {
	cfg, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Admin.Addr != "" {
		t.Fatalf("admin.addr defaults to %q: the admin API must be off by default", cfg.Admin.Addr)
	}
	cases := []struct {
		name, addr, token, want string
	}{
		{"no token", "127.0.0.1:8082", "", "admin.token (WEBHOOKD_ADMIN_TOKEN): required"},
		{"short token", "127.0.0.1:8082", "short-but-secret", "at least 32 characters (got 16)"},
		{"trailing newline", "127.0.0.1:8082", "0123456789abcdef0123456789abcdef\n", "line breaks"},
		{"bad addr", "8082", "0123456789abcdef0123456789abcdef", "admin.addr (WEBHOOKD_ADMIN_ADDR)"},
		{"the ops port", ":8081", "0123456789abcdef0123456789abcdef", "must differ from ops.addr"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("WEBHOOKD_ADMIN_ADDR", tc.addr)
			t.Setenv("WEBHOOKD_ADMIN_TOKEN", tc.token)
			_, err := Load("")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
			if tc.token != "" && strings.Contains(err.Error(), strings.TrimSpace(tc.token)) {
				t.Fatalf("the error quotes the token: %v", err)
			}
		})
	}
	t.Setenv("WEBHOOKD_ADMIN_ADDR", "127.0.0.1:8082")
	t.Setenv("WEBHOOKD_ADMIN_TOKEN", "0123456789abcdef0123456789abcdef")
	cfg, err = Load("")
	if err != nil {
		t.Fatalf("a valid admin config was rejected: %v", err)
	}
	if m := cfg.Masked(); m["admin.token"] != "****cdef" {
		t.Fatalf("admin.token shown as %v, want it masked", m["admin.token"])
	}
}

// writeIn writes a file into dir and returns its path.
func writeIn(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Production connectivity: every inconsistent combination is refused at
// startup by a message naming the key (and its variable) to fix.
func TestSecurityConfigCombinationsNameTheKey(t *testing.T) {
	dir := t.TempDir()
	notPEM := writeIn(t, dir, "not.pem", "this is not a certificate\n")
	missing := filepath.Join(dir, "missing.pem")
	cases := []struct {
		name string
		env  map[string]string
		key  string // the key the error must name
		want string // and a phrase of its reason
	}{
		{"unknown mechanism", map[string]string{"WEBHOOKD_KAFKA_SASL_MECHANISM": "GSSAPI", "WEBHOOKD_KAFKA_SASL_USERNAME": "u", "WEBHOOKD_KAFKA_SASL_PASSWORD": "p"},
			"kafka.sasl.mechanism (WEBHOOKD_KAFKA_SASL_MECHANISM)", "SCRAM-SHA-512"},
		{"mechanism without username", map[string]string{"WEBHOOKD_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256", "WEBHOOKD_KAFKA_SASL_PASSWORD": "p"},
			"kafka.sasl.username (WEBHOOKD_KAFKA_SASL_USERNAME)", "required"},
		{"mechanism without password", map[string]string{"WEBHOOKD_KAFKA_SASL_MECHANISM": "PLAIN", "WEBHOOKD_KAFKA_SASL_USERNAME": "u"},
			"kafka.sasl.password (WEBHOOKD_KAFKA_SASL_PASSWORD)", "required"},
		{"credentials without mechanism", map[string]string{"WEBHOOKD_KAFKA_SASL_USERNAME": "u", "WEBHOOKD_KAFKA_SASL_PASSWORD": "p"},
			"kafka.sasl.mechanism", "is empty"},
		{"unreadable CA file", map[string]string{"WEBHOOKD_KAFKA_TLS_ENABLED": "true", "WEBHOOKD_KAFKA_TLS_CA_FILE": missing},
			"kafka.tls.ca_file (WEBHOOKD_KAFKA_TLS_CA_FILE)", "no such file"},
		{"CA file without a certificate", map[string]string{"WEBHOOKD_REDIS_TLS_ENABLED": "true", "WEBHOOKD_REDIS_TLS_CA_FILE": notPEM},
			"redis.tls.ca_file (WEBHOOKD_REDIS_TLS_CA_FILE)", "no PEM certificate"},
		{"cert without key", map[string]string{"WEBHOOKD_REDIS_TLS_ENABLED": "true", "WEBHOOKD_REDIS_TLS_CERT_FILE": notPEM},
			"redis.tls.key_file (WEBHOOKD_REDIS_TLS_KEY_FILE)", "required with redis.tls.cert_file"},
		{"key without cert", map[string]string{"WEBHOOKD_KAFKA_TLS_ENABLED": "true", "WEBHOOKD_KAFKA_TLS_KEY_FILE": notPEM},
			"kafka.tls.cert_file (WEBHOOKD_KAFKA_TLS_CERT_FILE)", "required with kafka.tls.key_file"},
		{"unreadable client key pair", map[string]string{"WEBHOOKD_KAFKA_TLS_ENABLED": "true", "WEBHOOKD_KAFKA_TLS_CERT_FILE": notPEM, "WEBHOOKD_KAFKA_TLS_KEY_FILE": notPEM},
			"kafka.tls.cert_file", "client certificate"},
		{"TLS files with TLS off", map[string]string{"WEBHOOKD_REDIS_TLS_CA_FILE": notPEM},
			"redis.tls.enabled (WEBHOOKD_REDIS_TLS_ENABLED)", "redis.tls.ca_file is set"},
		{"cluster without hash tag", map[string]string{"WEBHOOKD_REDIS_ADDRS": "r1:6379,r2:6379"},
			"redis.key_prefix (WEBHOOKD_REDIS_KEY_PREFIX)", "hash tag"},
		{"cluster flag without hash tag", map[string]string{"WEBHOOKD_REDIS_CLUSTER": "true", "WEBHOOKD_REDIS_KEY_PREFIX": "webhookd{}:"},
			"redis.key_prefix", "hash tag"},
		{"cluster with a db", map[string]string{"WEBHOOKD_REDIS_ADDRS": "r1:6379,r2:6379", "WEBHOOKD_REDIS_KEY_PREFIX": "{webhookd}:", "WEBHOOKD_REDIS_DB": "2"},
			"redis.db (WEBHOOKD_REDIS_DB)", "Cluster"},
		{"cluster and sentinel", map[string]string{"WEBHOOKD_REDIS_CLUSTER": "true", "WEBHOOKD_REDIS_MASTER_NAME": "mymaster", "WEBHOOKD_REDIS_KEY_PREFIX": "{w}:"},
			"redis.cluster (WEBHOOKD_REDIS_CLUSTER)", "master_name"},
		{"bad address in addrs", map[string]string{"WEBHOOKD_REDIS_ADDRS": "s1:26379,nope", "WEBHOOKD_REDIS_MASTER_NAME": "mymaster"},
			"redis.addrs (WEBHOOKD_REDIS_ADDRS)", `"nope" is not host:port`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			_, err := Load("")
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.key) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error does not name %s with %q: %v", tc.key, tc.want, err)
			}
		})
	}
}

func TestSecurityConfigAccepted(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		mode string
	}{
		{"defaults: one server", nil, RedisStandalone},
		{"SCRAM-SHA-512", map[string]string{"WEBHOOKD_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "WEBHOOKD_KAFKA_SASL_USERNAME": "u", "WEBHOOKD_KAFKA_SASL_PASSWORD": "p"}, RedisStandalone},
		{"TLS with system roots", map[string]string{"WEBHOOKD_KAFKA_TLS_ENABLED": "true", "WEBHOOKD_REDIS_TLS_ENABLED": "true", "WEBHOOKD_REDIS_TLS_SERVER_NAME": "redis.internal"}, RedisStandalone},
		{"sentinel", map[string]string{"WEBHOOKD_REDIS_ADDRS": "s1:26379,s2:26379,s3:26379", "WEBHOOKD_REDIS_MASTER_NAME": "mymaster", "WEBHOOKD_REDIS_DB": "1"}, RedisSentinel},
		{"sentinel on redis.addr", map[string]string{"WEBHOOKD_REDIS_ADDR": "sentinel:26379", "WEBHOOKD_REDIS_MASTER_NAME": "mymaster"}, RedisSentinel},
		{"cluster by addresses", map[string]string{"WEBHOOKD_REDIS_ADDRS": "r1:6379,r2:6379", "WEBHOOKD_REDIS_KEY_PREFIX": "{webhookd}:"}, RedisCluster},
		{"cluster by flag", map[string]string{"WEBHOOKD_REDIS_CLUSTER": "true", "WEBHOOKD_REDIS_KEY_PREFIX": "prod:{webhookd}:"}, RedisCluster},
		{"one address in addrs", map[string]string{"WEBHOOKD_REDIS_ADDRS": "r1:6379"}, RedisStandalone},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			cfg, err := Load("")
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Redis.Mode(); got != tc.mode {
				t.Fatalf("mode %s, want %s", got, tc.mode)
			}
		})
	}
}

func TestHasHashTag(t *testing.T) {
	for prefix, want := range map[string]bool{
		"{webhookd}:": true, "prod:{webhookd}:": true, "{a}{b}": true,
		"webhookd:": false, "{}webhookd:": false, "webhookd{": false, "}{x": false, "{}{x}": false,
	} {
		if got := HasHashTag(prefix); got != want {
			t.Errorf("HasHashTag(%q) = %v, want %v", prefix, got, want)
		}
	}
}

func TestKafkaSASLPasswordIsMasked(t *testing.T) {
	t.Setenv("WEBHOOKD_KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
	t.Setenv("WEBHOOKD_KAFKA_SASL_USERNAME", "webhookd")
	t.Setenv("WEBHOOKD_KAFKA_SASL_PASSWORD", "kafka-very-secret-pw")
	cfg, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	m := cfg.Masked()
	if got := m["kafka.sasl.password"]; got != "****t-pw" {
		t.Fatalf("kafka.sasl.password shown as %v, want it masked", got)
	}
	if m["kafka.sasl.username"] != "webhookd" || m["kafka.sasl.mechanism"] != "SCRAM-SHA-256" {
		t.Fatalf("SASL settings missing from the masked config: %v", m)
	}
}

// Secrecy is marked on each option, and Masked masks every option so marked.
// An option whose help calls it secret must be marked; one whose name says
// password, token or key must be marked or listed here with the reason it
// is not.
func TestEverySecretOptionIsMarkedAndMasked(t *testing.T) {
	notSecret := map[string]string{
		"kafka.tls.key_file":       "a path; the private key stays in the file",
		"redis.tls.key_file":       "a path; the private key stays in the file",
		"redis.key_prefix":         "the prefix of Redis key names",
		"consumer.key_concurrency": "a number of lanes per partition",
	}
	var cfg Config
	values := map[string]string{}
	for _, o := range Options {
		name := strings.ToLower(o.Key)
		saysSecret := strings.Contains(strings.ToLower(o.Help), "secret")
		switch {
		case saysSecret && !o.Secret:
			t.Errorf("%s: its help says secret, but it is not marked Secret", o.Key)
		case o.Secret && !saysSecret:
			t.Errorf("%s: marked Secret, but its help does not say so (the README's table shows only the help)", o.Key)
		}
		if strings.Contains(name, "password") || strings.Contains(name, "token") || strings.Contains(name, "key") {
			if _, listed := notSecret[o.Key]; o.Secret == listed {
				t.Errorf("%s: mark it Secret, or list it in notSecret with the reason it is not (Secret %v, listed %v)", o.Key, o.Secret, listed)
			}
		}
		if !o.Secret {
			continue
		}
		v := "clear-value-of-" + o.Key
		values[o.Key] = v
		if err := decodeOption(&cfg, o, v); err != nil {
			t.Fatalf("%s: %v", o.Key, err)
		}
	}
	for k := range notSecret {
		if !isOption(k) {
			t.Errorf("notSecret lists %s, which is no option", k)
		}
	}
	if len(values) == 0 {
		t.Fatal("no option is secret")
	}
	masked := cfg.Masked()
	core, logs := observer.New(zapcore.InfoLevel)
	zap.New(core).Info("starting", zap.Object("config", cfg))
	logged := fmt.Sprint(logs.All()[0].ContextMap())
	for k, v := range values {
		if shown := fmt.Sprint(masked[k]); shown != "["+Mask(v)+"]" && shown != Mask(v) {
			t.Errorf("%s is shown as %s, want %s", k, shown, Mask(v))
		}
		if strings.Contains(logged, v) {
			t.Errorf("%s is logged in clear", k)
		}
	}
}
