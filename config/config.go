// Package config loads webhookd's configuration once: defaults, then an
// optional YAML file, then WEBHOOKD_* environment variables; it validates the
// result and hands typed values to the rest of the program. Viper stays inside
// this package.
package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/unibo/webhookd/egress"
)

// EnvPrefix is the prefix of every environment variable webhookd reads.
const EnvPrefix = "WEBHOOKD"

// Config is webhookd's whole configuration.
type Config struct {
	Log             Log           `mapstructure:"log"`
	Kafka           Kafka         `mapstructure:"kafka"`
	Consumer        Consumer      `mapstructure:"consumer"`
	Redis           Redis         `mapstructure:"redis"`
	Subscriptions   Subscriptions `mapstructure:"subscriptions"`
	Delivery        Delivery      `mapstructure:"delivery"`
	Ops             Ops           `mapstructure:"ops"`
	Admin           Admin         `mapstructure:"admin"`
	ShutdownTimeout time.Duration `mapstructure:"shutdown_timeout"`
}

// Log configures zap.
type Log struct {
	Level  string `mapstructure:"level"`
	Format string `mapstructure:"format"`
}

// Kafka configures the brokers, topics and consumer group.
type Kafka struct {
	Brokers           []string      `mapstructure:"brokers"`
	Topics            []string      `mapstructure:"topics"`
	GroupID           string        `mapstructure:"group_id"`
	ClientID          string        `mapstructure:"client_id"`
	CreateTopics      bool          `mapstructure:"create_topics"`
	Partitions        int           `mapstructure:"partitions"`
	ReplicationFactor int           `mapstructure:"replication_factor"`
	StartOffset       string        `mapstructure:"start_offset"`
	SessionTimeout    time.Duration `mapstructure:"session_timeout"`
	RebalanceTimeout  time.Duration `mapstructure:"rebalance_timeout"`
	HeartbeatInterval time.Duration `mapstructure:"heartbeat_interval"`
	DialTimeout       time.Duration `mapstructure:"dial_timeout"`
	FetchMinBytes     int           `mapstructure:"fetch_min_bytes"`
	FetchMaxBytes     int           `mapstructure:"fetch_max_bytes"`
	FetchMaxWait      time.Duration `mapstructure:"fetch_max_wait"`
	SASL              SASL          `mapstructure:"sasl"`
	TLS               TLS           `mapstructure:"tls"`
}

// SASL mechanisms webhookd speaks to Kafka.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// SASL configures authentication to the Kafka brokers; an empty Mechanism
// means none.
type SASL struct {
	Mechanism string `mapstructure:"mechanism"`
	Username  string `mapstructure:"username"`
	Password  string `mapstructure:"password"`
}

// TLS configures a TLS client connection (to Kafka or to Redis).
type TLS struct {
	Enabled bool `mapstructure:"enabled"`
	// CAFile verifies the server; empty means the system's roots.
	CAFile string `mapstructure:"ca_file"`
	// CertFile and KeyFile are a client certificate, for servers that
	// require one (mutual TLS).
	CertFile string `mapstructure:"cert_file"`
	KeyFile  string `mapstructure:"key_file"`
	// ServerName overrides the name verified in the server's certificate;
	// empty means the host of the address dialled.
	ServerName         string `mapstructure:"server_name"`
	InsecureSkipVerify bool   `mapstructure:"insecure_skip_verify"`
}

// Consumer configures how each partition's messages are processed.
type Consumer struct {
	InvalidTopic     string        `mapstructure:"invalid_topic"`
	MaxInFlight      int           `mapstructure:"max_in_flight"`
	MaxInFlightTotal int           `mapstructure:"max_in_flight_total"`
	KeyConcurrency   int           `mapstructure:"key_concurrency"`
	CommitInterval   time.Duration `mapstructure:"commit_interval"`
	MaxMessageBytes  int           `mapstructure:"max_message_bytes"`
}

// Redis configures the connection to the subscription table.
type Redis struct {
	Addr        string        `mapstructure:"addr"`
	Addrs       []string      `mapstructure:"addrs"`
	MasterName  string        `mapstructure:"master_name"`
	Cluster     bool          `mapstructure:"cluster"`
	Username    string        `mapstructure:"username"`
	Password    string        `mapstructure:"password"`
	DB          int           `mapstructure:"db"`
	KeyPrefix   string        `mapstructure:"key_prefix"`
	DialTimeout time.Duration `mapstructure:"dial_timeout"`
	TLS         TLS           `mapstructure:"tls"`
}

// Redis deployment modes, see Redis.Mode.
const (
	RedisStandalone = "standalone"
	RedisSentinel   = "sentinel"
	RedisCluster    = "cluster"
)

// Addresses are the addresses to dial: redis.addrs when set, else
// redis.addr.
func (r Redis) Addresses() []string {
	if len(r.Addrs) > 0 {
		return r.Addrs
	}
	return []string{r.Addr}
}

// Mode is how the addresses are used, the rule of go-redis's universal
// client: with a master name they are Sentinels; otherwise several
// addresses, or cluster: true, are Cluster seed nodes; otherwise one server.
func (r Redis) Mode() string {
	switch {
	case r.MasterName != "":
		return RedisSentinel
	case r.Cluster || len(r.Addresses()) > 1:
		return RedisCluster
	default:
		return RedisStandalone
	}
}

// HasHashTag reports whether every key starting with prefix hashes to the
// same Redis Cluster slot: the prefix holds a non-empty {hash tag}, and its
// first '{' is the key's first.
func HasHashTag(prefix string) bool {
	open := strings.IndexByte(prefix, '{')
	if open < 0 {
		return false
	}
	end := strings.IndexByte(prefix[open+1:], '}')
	return end > 0
}

// Subscriptions configures the in-memory copy of the subscription table.
type Subscriptions struct {
	PollInterval           time.Duration `mapstructure:"poll_interval"`
	RefreshInterval        time.Duration `mapstructure:"refresh_interval"`
	EncryptionKey          string        `mapstructure:"encryption_key"`
	PreviousEncryptionKeys []string      `mapstructure:"previous_encryption_keys"`
	MaxPerTenant           int           `mapstructure:"max_per_tenant"`
}

// Delivery configures the HTTP requests sent to partners.
type Delivery struct {
	Timeout             time.Duration `mapstructure:"timeout"`
	EndpointConcurrency int           `mapstructure:"endpoint_concurrency"`
	EndpointQueue       int           `mapstructure:"endpoint_queue"`
	MaxIdleConnsPerHost int           `mapstructure:"max_idle_conns_per_host"`
	MaxResponseBytes    int64         `mapstructure:"max_response_bytes"`
	AllowedCIDRs        []string      `mapstructure:"allowed_cidrs"`
	RequireHTTPS        bool          `mapstructure:"require_https"`
	Backpressure        string        `mapstructure:"backpressure"`
	Breaker             Breaker       `mapstructure:"breaker"`
	Retry               Retry         `mapstructure:"retry"`
	DLQ                 DLQ           `mapstructure:"dlq"`
}

// The values of delivery.backpressure.
const (
	BackpressureDefer  = "defer"  // 429/503: not accepted yet; delivered later, never dead-lettered for it
	BackpressureStrict = "strict" // 429/503: a failed attempt, as the guide reads literally
)

// Retry configures redelivery of failed deliveries (off by default: the
// guide promises partners no retries).
type Retry struct {
	MaxAttempts   int           `mapstructure:"max_attempts"`
	MinBackoff    time.Duration `mapstructure:"min_backoff"`
	MaxBackoff    time.Duration `mapstructure:"max_backoff"`
	RetryAfterMax time.Duration `mapstructure:"retry_after_max"`
	On            []string      `mapstructure:"on"`
	Topic         string        `mapstructure:"topic"`
}

// DLQ configures the dead-letter topic.
type DLQ struct {
	Topic string `mapstructure:"topic"`
}

// Breaker configures the per-endpoint circuit breaker.
type Breaker struct {
	Failures      int           `mapstructure:"failures"`
	StallTimeout  time.Duration `mapstructure:"stall_timeout"`
	StallRequests int           `mapstructure:"stall_requests"`
	Cooldown      time.Duration `mapstructure:"cooldown"`
}

// Ops configures the health endpoints' HTTP server.
type Ops struct {
	Addr  string `mapstructure:"addr"`
	Pprof bool   `mapstructure:"pprof"`
}

// Admin configures the admin HTTP API (subscriptions, send-test, dead
// letters, replay). It is off unless Addr is set, and then requires Token.
type Admin struct {
	Addr  string `mapstructure:"addr"`
	Token string `mapstructure:"token"`
}

// MinAdminTokenLen is the shortest admin.token accepted: 32 characters
// (`openssl rand -hex 32` gives 64).
const MinAdminTokenLen = 32

// Option documents one configuration key: its default, what it trades, and
// whether its value is secret. Options are written positionally, so a new
// option cannot leave out its secrecy: it says public or secret.
type Option struct {
	Key     string
	Default any
	Help    string
	// Secret values are masked wherever the configuration is shown (the
	// startup log line, `config print`) and never quoted in an error.
	Secret bool
}

// The two values of Option.Secret, for the table below.
const (
	public = false
	secret = true
)

// Env is the environment variable that sets the option.
func (o Option) Env() string { return EnvName(o.Key) }

// EnvName maps a key path such as kafka.group_id to WEBHOOKD_KAFKA_GROUP_ID.
func EnvName(key string) string {
	return EnvPrefix + "_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// Options lists every key with its default. It is the single source of the
// defaults and of the configuration reference (docs/configuration.md).
var Options = []Option{
	{"log.level", "info", "debug, info, warn or error", public},
	{"log.format", "json", "json (production) or console (development)", public},
	{"kafka.brokers", []string{"127.0.0.1:9092"}, "bootstrap brokers, comma-separated in env", public},
	{"kafka.topics", []string{"prize-payouts", "campaign-participation"}, "topics consumed; any event type may arrive on any of them", public},
	{"kafka.group_id", "webhookd", "consumer group id; every replica of a deployment shares it", public},
	{"kafka.client_id", "webhookd", "client id sent to the brokers", public},
	{"kafka.create_topics", true, "create missing topics at startup (never shrinks or alters existing ones)", public},
	{"kafka.partitions", 12, "partitions of topics created at startup; the ceiling on useful replicas", public},
	{"kafka.replication_factor", -1, "replication factor of topics created at startup; -1 takes the broker's default.replication.factor", public},
	{"kafka.start_offset", "earliest", "where a group with no committed offset starts: earliest (nothing missed) or latest", public},
	{"kafka.session_timeout", 30 * time.Second, "a silent member is evicted after this; shorter moves partitions of a dead pod sooner", public},
	{"kafka.rebalance_timeout", 30 * time.Second, "how long members get to finish in-flight work and rejoin during a rebalance", public},
	{"kafka.heartbeat_interval", 3 * time.Second, "heartbeat period; keep well under session_timeout", public},
	{"kafka.dial_timeout", 10 * time.Second, "TCP dial timeout to a broker", public},
	{"kafka.fetch_min_bytes", 1, "fetch waits for this many bytes (or fetch_max_wait); 1 keeps latency lowest", public},
	{"kafka.fetch_max_bytes", 10 << 20, "largest fetch response per partition; bounds memory per partition", public},
	{"kafka.fetch_max_wait", 500 * time.Millisecond, "longest a fetch waits for fetch_min_bytes", public},
	{"kafka.sasl.mechanism", "", "SASL authentication to the brokers: empty (none), PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; PLAIN sends the password as is, so use it only with kafka.tls", public},
	{"kafka.sasl.username", "", "SASL user (required with a mechanism)", public},
	{"kafka.sasl.password", "", "SASL password (secret; required with a mechanism)", secret},
	{"kafka.tls.enabled", false, "connect to the brokers over TLS (every connection: consumer groups, writers, admin requests)", public},
	{"kafka.tls.ca_file", "", "PEM file of the CA(s) that sign the brokers' certificates; empty trusts the system's roots", public},
	{"kafka.tls.cert_file", "", "PEM client certificate, for brokers that require mutual TLS (needs kafka.tls.key_file)", public},
	{"kafka.tls.key_file", "", "PEM private key of kafka.tls.cert_file", public},
	{"kafka.tls.server_name", "", "name expected in the brokers' certificates; empty means the host dialled", public},
	{"kafka.tls.insecure_skip_verify", false, "do not verify the brokers' certificates (tests only: anyone in the path can read the traffic)", public},
	{"consumer.invalid_topic", "webhookd.invalid", "topic that receives messages that are not valid domain events: the raw bytes, the reason in headers", public},
	{"consumer.max_in_flight", 256, "messages read ahead but not yet delivered, per partition; more overlaps more round trips, costs memory and duplicates after a crash", public},
	{"consumer.max_in_flight_total", 4096, "messages in flight across all partitions of the pod; bounds memory whatever the partition count", public},
	{"consumer.key_concurrency", 64, "lanes per partition: messages of different keys delivered at once (keys hash to lanes; same-key messages are always sequential); more lanes, less head-of-line waiting behind a slow key, one idle goroutine each", public},
	{"consumer.commit_interval", time.Second, "how often completed offsets are committed; shorter means fewer duplicates after a crash, more commit traffic", public},
	{"consumer.max_message_bytes", 256 << 10, "larger messages are not decoded: they go to the invalid topic (the guide's payloads are under 1 KiB); bounds what one hostile message costs and what a partner receives", public},
	{"redis.addr", "127.0.0.1:6379", "Redis holding the subscription table (a single server; see redis.addrs for Sentinel and Cluster)", public},
	{"redis.addrs", []string{}, "several addresses, used instead of redis.addr: the Sentinels when redis.master_name is set, otherwise Redis Cluster seed nodes", public},
	{"redis.master_name", "", "Sentinel mode: the name of the master the Sentinels at redis.addrs (or redis.addr) watch", public},
	{"redis.cluster", false, "Cluster mode with a single address (a cluster's configuration endpoint); several redis.addrs without master_name are a cluster anyway. Cluster mode needs a {hash tag} in redis.key_prefix and db 0", public},
	{"redis.username", "", "Redis ACL user", public},
	{"redis.password", "", "Redis password (secret)", secret},
	{"redis.db", 0, "Redis database number (must be 0 in Cluster mode)", public},
	{"redis.key_prefix", "webhookd:", "prefix of every Redis key and channel webhookd uses; in Cluster mode it must hold a hash tag such as {webhookd}: so a write's keys share a slot", public},
	{"redis.dial_timeout", 5 * time.Second, "Redis dial timeout", public},
	{"redis.tls.enabled", false, "connect to Redis over TLS", public},
	{"redis.tls.ca_file", "", "PEM file of the CA(s) that sign Redis's certificate; empty trusts the system's roots", public},
	{"redis.tls.cert_file", "", "PEM client certificate, for a Redis that requires one (needs redis.tls.key_file)", public},
	{"redis.tls.key_file", "", "PEM private key of redis.tls.cert_file", public},
	{"redis.tls.server_name", "", "name expected in Redis's certificate; empty means the host dialled", public},
	{"redis.tls.insecure_skip_verify", false, "do not verify Redis's certificate (tests only)", public},
	{"subscriptions.poll_interval", time.Second, "how often the table's version key is checked, besides pub/sub; bounds how stale a pod can be", public},
	{"subscriptions.refresh_interval", 30 * time.Second, "unconditional full reload of the table", public},
	{"subscriptions.encryption_key", "", "base64 of 32 random bytes (head -c 32 /dev/urandom | base64): API keys and signing secrets are sealed with AES-256-GCM in Redis; empty stores them in clear (a warning at startup) (secret)", secret},
	{"subscriptions.previous_encryption_keys", []string{}, "keys being rotated out: values sealed with them still open; after `webhookd subscriptions reencrypt` they can go (secret)", secret},
	{"subscriptions.max_per_tenant", 100, "subscriptions one tenant may have (0: no limit); bounds the fan-out one event can cause", public},
	{"delivery.timeout", 30 * time.Second, "whole-request timeout per webhook POST (the guide promises partners 30 s)", public},
	{"delivery.endpoint_concurrency", 384, "requests in flight per partner endpoint (scheme://host:port) at most, also its connection cap: the ceiling of its adaptive concurrency limit (cut by a quarter on timeouts, transport errors and 502/503/504, raised by one per window of successes); the most load one partner gets, and what a slow partner can absorb (384 at 6 s = 64/s)", public},
	{"delivery.endpoint_queue", 4096, "deliveries that may wait in memory for one endpoint at most (also never more than it takes in about two seconds at its recent pace, and none while it is silent); the rest are deferred through the retry tiers with their attempts unchanged, booked at the endpoint's pace, so one partner's slowness never holds the source partitions", public},
	{"delivery.max_idle_conns_per_host", 384, "keep-alive connections kept per partner host; below endpoint_concurrency, bursts open new connections", public},
	{"delivery.max_response_bytes", 64 << 10, "response body read (and discarded) at most, so connections can be reused", public},
	{"delivery.allowed_cidrs", []string{}, "address ranges deliveries may reach despite the egress guard (which refuses loopback, private, link-local/metadata, CGNAT, multicast and IPv6 local ranges at connect time), comma-separated CIDRs; for development, tests and partners on a private link only", public},
	{"delivery.require_https", false, "refuse plain-http subscription URLs (when written, and at delivery)", public},
	{"delivery.backpressure", "defer", "what a 429, or a 503 with Retry-After, means: defer (the partner has not accepted the delivery yet: its endpoint pauses for the Retry-After, 1 s without one, and the delivery goes again then with the same webhook-id, never dead-lettered for it unless it is still refused a day later) or strict (the guide's literal reading: a failed attempt, retried or dead-lettered by delivery.retry like any other; the endpoint still pauses)", public},
	{"delivery.breaker.failures", 5, "consecutive failures that open an endpoint's circuit: connection errors, timeouts, 5xx (but a 503 with Retry-After) and 408 answers count; 429 and 503 with Retry-After ask for a pause and do not; a success resets the count; other 4xx answers, and deliveries refused before sending (egress policy), neither count nor reset", public},
	{"delivery.breaker.stall_timeout", 5 * time.Second, "an endpoint with at least stall_requests requests outstanding that answers none of them for this long (or for twice its median round trip, if longer: a partner that always takes 6 s is slow, not silent) is silent: what waits for it in memory is deferred through the retry tiers, and nothing more waits for it until it answers; its outstanding requests keep their delivery.timeout (the circuit opens only on failures, timeouts among them)", public},
	{"delivery.breaker.stall_requests", 16, "outstanding requests needed before an endpoint can be judged silent", public},
	{"delivery.breaker.cooldown", 10 * time.Second, "how long an open circuit fails deliveries fast before one probe request tests the endpoint again", public},
	{"delivery.retry.max_attempts", 1, "attempts per delivery, the first included; 1 is the guide's promise (no retries); a subscription may set its own", public},
	{"delivery.retry.min_backoff", time.Second, "backoff before the first retry; later ones double, with full jitter", public},
	{"delivery.retry.max_backoff", 5 * time.Minute, "longest backoff between attempts", public},
	{"delivery.retry.retry_after_max", time.Hour, "cap on a partner's Retry-After (honoured on 429 and 503: it may lengthen a backoff, never shorten it)", public},
	{"delivery.retry.on", []string{"transport", "timeout", "circuit", "408", "429", "5xx"}, "which failures are retried (when max_attempts > 1): transport, timeout, circuit (skipped by an open circuit; waits for its cool-down, and counts as an attempt), 5xx, 4xx or exact statuses", public},
	{"delivery.retry.topic", "webhookd.retry", "topic holding deliveries waiting for their next attempt, so retries never block a partition; the records wait in its delay tiers <topic>.1s, .5s, .30s, .2m, .10m and .1h (created with it), so one due later never holds one due sooner", public},
	{"delivery.dlq.topic", "webhookd.dlq", "dead-letter topic: deliveries that failed for good, with body, subscription, attempts, last status and error; `webhookd replay` redelivers them", public},
	{"ops.addr", ":8081", "listen address of /healthz and /readyz", public},
	{"ops.pprof", false, "serve Go's /debug/pprof on the ops port (for profiling; keep the port private)", public},
	{"admin.addr", "", "listen address of the admin HTTP API (subscriptions, send-test, dead letters, replay); empty = off", public},
	{"admin.token", "", "bearer token the admin API requires (secret; at least 32 characters; required when admin.addr is set)", secret},
	{"shutdown_timeout", 25 * time.Second, "on SIGTERM, how long in-flight deliveries get to finish before the final commit; keep below the pod's terminationGracePeriodSeconds", public},
}

// Defaults returns the configuration with every default applied.
func Defaults() Config {
	cfg, _, _ := load("", nil, func(string) (string, bool) { return "", false })
	return cfg
}

// Load reads defaults, then the YAML file at path (when path is not empty),
// then the environment, and validates the result. It reports every problem
// at once, one a line, each naming its key and variable: values of the wrong
// type, durations without a unit, keys of the file that are no option (with
// the nearest one), and what Validate finds. WEBHOOKD_* variables that name
// no option are not an error here; see UnknownEnv.
func Load(path string) (Config, error) {
	settings, err := readFile(path)
	if err != nil {
		return Config{}, err
	}
	cfg, failed, errs := load(path, settings, os.LookupEnv)
	if err := cfg.Validate(); err != nil {
		// A key that could not be decoded kept its default; what Validate
		// says of it would be about a value nobody wrote.
		for _, e := range unwrapJoined(err) {
			var ke *KeyError
			if errors.As(e, &ke) && failed[ke.Key] {
				continue
			}
			errs = append(errs, e)
		}
	}
	if len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}
	return cfg, nil
}

func unwrapJoined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// Validate checks every value and returns all problems, each naming its key.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &KeyError{Key: key, Err: fmt.Errorf(format, args...)})
	}
	if _, err := zapcore.ParseLevel(c.Log.Level); err != nil {
		bad("log.level", "unknown level %q (want debug, info, warn or error)", c.Log.Level)
	}
	if c.Log.Format != "json" && c.Log.Format != "console" {
		bad("log.format", "must be json or console, got %q", c.Log.Format)
	}
	if len(c.Kafka.Brokers) == 0 {
		bad("kafka.brokers", "at least one broker is required")
	}
	for _, b := range c.Kafka.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			bad("kafka.brokers", "%q is not host:port", b)
		}
	}
	if len(c.Kafka.Topics) == 0 {
		bad("kafka.topics", "at least one topic is required")
	}
	seen := map[string]bool{}
	for _, t := range c.Kafka.Topics {
		if !validTopic(t) {
			bad("kafka.topics", "%q is not a valid Kafka topic name", t)
		}
		if seen[t] {
			bad("kafka.topics", "%q is listed twice", t)
		}
		seen[t] = true
	}
	if strings.TrimSpace(c.Kafka.GroupID) == "" {
		bad("kafka.group_id", "must not be empty")
	}
	if c.Kafka.Partitions < 1 {
		bad("kafka.partitions", "must be at least 1, got %d", c.Kafka.Partitions)
	}
	if c.Kafka.ReplicationFactor < 1 && c.Kafka.ReplicationFactor != -1 {
		bad("kafka.replication_factor", "must be at least 1, or -1 for the broker's default, got %d", c.Kafka.ReplicationFactor)
	}
	if c.Kafka.StartOffset != "earliest" && c.Kafka.StartOffset != "latest" {
		bad("kafka.start_offset", "must be earliest or latest, got %q", c.Kafka.StartOffset)
	}
	positive := func(key string, d time.Duration) {
		if d <= 0 {
			bad(key, "must be a positive duration such as 5s, got %s", d)
		}
	}
	positive("kafka.session_timeout", c.Kafka.SessionTimeout)
	positive("kafka.rebalance_timeout", c.Kafka.RebalanceTimeout)
	positive("kafka.heartbeat_interval", c.Kafka.HeartbeatInterval)
	positive("kafka.dial_timeout", c.Kafka.DialTimeout)
	positive("kafka.fetch_max_wait", c.Kafka.FetchMaxWait)
	if c.Kafka.HeartbeatInterval >= c.Kafka.SessionTimeout && c.Kafka.SessionTimeout > 0 {
		bad("kafka.heartbeat_interval", "must be shorter than kafka.session_timeout (%s)", c.Kafka.SessionTimeout)
	}
	if c.Kafka.FetchMinBytes < 1 {
		bad("kafka.fetch_min_bytes", "must be at least 1, got %d", c.Kafka.FetchMinBytes)
	}
	if c.Kafka.FetchMaxBytes < c.Kafka.FetchMinBytes {
		bad("kafka.fetch_max_bytes", "must be at least kafka.fetch_min_bytes, got %d", c.Kafka.FetchMaxBytes)
	}
	c.validateKafkaSecurity(bad)
	if c.Consumer.MaxInFlight < 1 {
		bad("consumer.max_in_flight", "must be at least 1, got %d", c.Consumer.MaxInFlight)
	}
	if c.Consumer.MaxInFlightTotal < c.Consumer.MaxInFlight {
		bad("consumer.max_in_flight_total", "must be at least consumer.max_in_flight (%d), got %d", c.Consumer.MaxInFlight, c.Consumer.MaxInFlightTotal)
	}
	if c.Consumer.KeyConcurrency < 1 {
		bad("consumer.key_concurrency", "must be at least 1, got %d", c.Consumer.KeyConcurrency)
	}
	positive("consumer.commit_interval", c.Consumer.CommitInterval)
	if c.Consumer.MaxMessageBytes < 0 {
		bad("consumer.max_message_bytes", "must not be negative (0 = no limit), got %d", c.Consumer.MaxMessageBytes)
	}
	for key, topic := range map[string]string{"consumer.invalid_topic": c.Consumer.InvalidTopic, "delivery.retry.topic": c.Delivery.Retry.Topic, "delivery.dlq.topic": c.Delivery.DLQ.Topic} {
		if !validTopic(topic) {
			bad(key, "%q is not a valid Kafka topic name", topic)
		}
		if seen[topic] {
			bad(key, "%q is also a source topic (kafka.topics)", topic)
		}
	}
	if r := c.Delivery.Retry; r.MaxAttempts < 1 {
		bad("delivery.retry.max_attempts", "must be at least 1 (1 = no retries), got %d", r.MaxAttempts)
	}
	positive("delivery.retry.min_backoff", c.Delivery.Retry.MinBackoff)
	positive("delivery.retry.retry_after_max", c.Delivery.Retry.RetryAfterMax)
	if c.Delivery.Retry.MaxBackoff < c.Delivery.Retry.MinBackoff {
		bad("delivery.retry.max_backoff", "must be at least delivery.retry.min_backoff (%s)", c.Delivery.Retry.MinBackoff)
	}
	for _, on := range c.Delivery.Retry.On {
		if !validRetryOn(on) {
			bad("delivery.retry.on", "%q is not transport, timeout, circuit, 4xx, 5xx or an HTTP status", on)
		}
	}
	c.validateRedis(bad)
	positive("redis.dial_timeout", c.Redis.DialTimeout)
	positive("subscriptions.poll_interval", c.Subscriptions.PollInterval)
	positive("subscriptions.refresh_interval", c.Subscriptions.RefreshInterval)
	if c.Subscriptions.EncryptionKey != "" {
		if _, err := DecodeEncryptionKey(c.Subscriptions.EncryptionKey); err != nil {
			bad("subscriptions.encryption_key", "%v", err)
		}
	}
	for i, k := range c.Subscriptions.PreviousEncryptionKeys {
		if _, err := DecodeEncryptionKey(k); err != nil {
			bad("subscriptions.previous_encryption_keys", "entry %d: %v", i+1, err)
		}
	}
	if len(c.Subscriptions.PreviousEncryptionKeys) > 0 && c.Subscriptions.EncryptionKey == "" {
		bad("subscriptions.previous_encryption_keys", "needs subscriptions.encryption_key (the key values are sealed with now)")
	}
	if c.Subscriptions.MaxPerTenant < 0 {
		bad("subscriptions.max_per_tenant", "must not be negative (0 = no limit), got %d", c.Subscriptions.MaxPerTenant)
	}
	positive("delivery.timeout", c.Delivery.Timeout)
	if b := c.Delivery.Backpressure; b != BackpressureDefer && b != BackpressureStrict {
		bad("delivery.backpressure", "must be defer or strict, got %q", b)
	}
	if c.Delivery.EndpointConcurrency < 1 {
		bad("delivery.endpoint_concurrency", "must be at least 1, got %d", c.Delivery.EndpointConcurrency)
	}
	if c.Delivery.EndpointQueue < 0 {
		bad("delivery.endpoint_queue", "must not be negative, got %d", c.Delivery.EndpointQueue)
	}
	if c.Delivery.Breaker.Failures < 1 {
		bad("delivery.breaker.failures", "must be at least 1, got %d", c.Delivery.Breaker.Failures)
	}
	positive("delivery.breaker.stall_timeout", c.Delivery.Breaker.StallTimeout)
	if c.Delivery.Breaker.StallRequests < 1 {
		bad("delivery.breaker.stall_requests", "must be at least 1, got %d", c.Delivery.Breaker.StallRequests)
	}
	positive("delivery.breaker.cooldown", c.Delivery.Breaker.Cooldown)
	if c.Delivery.MaxIdleConnsPerHost < 0 {
		bad("delivery.max_idle_conns_per_host", "must not be negative, got %d", c.Delivery.MaxIdleConnsPerHost)
	}
	if _, err := egress.New(c.Delivery.AllowedCIDRs, c.Delivery.RequireHTTPS); err != nil {
		bad("delivery.allowed_cidrs", "%v", err)
	}
	if c.Delivery.MaxResponseBytes < 0 {
		bad("delivery.max_response_bytes", "must not be negative, got %d", c.Delivery.MaxResponseBytes)
	}
	if _, _, err := net.SplitHostPort(c.Ops.Addr); err != nil {
		bad("ops.addr", "%q is not [host]:port", c.Ops.Addr)
	}
	if c.Admin.Addr != "" {
		if _, _, err := net.SplitHostPort(c.Admin.Addr); err != nil {
			bad("admin.addr", "%q is not [host]:port", c.Admin.Addr)
		} else if c.Admin.Addr == c.Ops.Addr {
			bad("admin.addr", "must differ from ops.addr (%s)", c.Ops.Addr)
		}
		// Never quote the token: the message is printed and logged.
		switch n := len(c.Admin.Token); {
		case n < MinAdminTokenLen:
			bad("admin.token", "required when admin.addr is set, at least %d characters (got %d); generate one with `openssl rand -hex 32`", MinAdminTokenLen, n)
		case strings.ContainsFunc(c.Admin.Token, func(r rune) bool { return r <= ' ' || r == 0x7f }):
			bad("admin.token", "must not contain spaces, line breaks or control characters (a trailing newline from a file?)")
		}
	}
	positive("shutdown_timeout", c.ShutdownTimeout)
	return errors.Join(errs...)
}

// EncryptionKeyBytes is the size of subscriptions.encryption_key (AES-256).
const EncryptionKeyBytes = 32

// DecodeEncryptionKey reads a subscriptions encryption key: standard base64
// of EncryptionKeyBytes bytes. The error never quotes the key.
func DecodeEncryptionKey(b64 string) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil {
		return nil, errors.New("must be standard base64 of 32 bytes (head -c 32 /dev/urandom | base64)")
	}
	if len(raw) != EncryptionKeyBytes {
		return nil, fmt.Errorf("must decode to %d bytes, got %d", EncryptionKeyBytes, len(raw))
	}
	return raw, nil
}

func (c Config) validateKafkaSecurity(bad func(key, format string, args ...any)) {
	s := c.Kafka.SASL
	switch s.Mechanism {
	case "":
		if s.Username != "" || s.Password != "" {
			bad("kafka.sasl.mechanism", "is empty but kafka.sasl.username or kafka.sasl.password is set: choose PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
		}
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
		if s.Username == "" {
			bad("kafka.sasl.username", "is required with kafka.sasl.mechanism %s", s.Mechanism)
		}
		if s.Password == "" {
			bad("kafka.sasl.password", "is required with kafka.sasl.mechanism %s", s.Mechanism)
		}
	default:
		bad("kafka.sasl.mechanism", "must be empty, PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, got %q", s.Mechanism)
	}
	validateTLS("kafka.tls", c.Kafka.TLS, bad)
}

func (c Config) validateRedis(bad func(key, format string, args ...any)) {
	r := c.Redis
	if len(r.Addrs) == 0 {
		if strings.TrimSpace(r.Addr) == "" {
			bad("redis.addr", "must not be empty")
		} else if _, _, err := net.SplitHostPort(r.Addr); err != nil {
			bad("redis.addr", "%q is not host:port", r.Addr)
		}
	}
	for _, a := range r.Addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			bad("redis.addrs", "%q is not host:port", a)
		}
	}
	if r.DB < 0 {
		bad("redis.db", "must not be negative, got %d", r.DB)
	}
	if r.MasterName != "" && r.Cluster {
		bad("redis.cluster", "cannot be combined with redis.master_name (Sentinel)")
	}
	if r.Mode() == RedisCluster {
		if r.DB != 0 {
			bad("redis.db", "must be 0 in Cluster mode (several redis.addrs or redis.cluster), got %d", r.DB)
		}
		if !HasHashTag(r.KeyPrefix) {
			bad("redis.key_prefix", "%q has no hash tag: in Cluster mode (several redis.addrs or redis.cluster) the prefix must hold one, such as {webhookd}:, so that the keys of one write share a slot", r.KeyPrefix)
		}
	}
	validateTLS("redis.tls", r.TLS, bad)
}

// validateTLS checks a TLS block by building it: unreadable or malformed
// files are reported at startup, naming the key.
func validateTLS(prefix string, t TLS, bad func(key, format string, args ...any)) {
	if !t.Enabled {
		for _, f := range []struct{ key, value string }{{"ca_file", t.CAFile}, {"cert_file", t.CertFile}, {"key_file", t.KeyFile}, {"server_name", t.ServerName}} {
			if f.value != "" {
				bad(prefix+".enabled", "is false but %s.%s is set: enable TLS or remove it", prefix, f.key)
			}
		}
		return
	}
	if _, err := t.Config(prefix); err != nil {
		var ke *KeyError
		if errors.As(err, &ke) {
			bad(ke.Key, "%v", ke.Err)
			return
		}
		bad(prefix, "%v", err)
	}
}

func validRetryOn(s string) bool {
	switch s {
	case "transport", "timeout", "circuit", "4xx", "5xx":
		return true
	}
	n, err := strconv.Atoi(s)
	return err == nil && n >= 100 && n <= 599
}

func validTopic(t string) bool {
	if t == "" || len(t) > 249 || t == "." || t == ".." {
		return false
	}
	for _, r := range t {
		ok := r == '.' || r == '_' || r == '-' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
		if !ok {
			return false
		}
	}
	return true
}

// Masked returns the configuration as a flat key → value map with the value
// of every Secret option masked, for the startup log line and `config print`.
func (c Config) Masked() map[string]any {
	flat := map[string]any{}
	flatten("", reflect.ValueOf(c), flat)
	for _, o := range Options {
		if !o.Secret {
			continue
		}
		switch v := flat[o.Key].(type) {
		case string:
			flat[o.Key] = Mask(v)
		case []string:
			masked := make([]string, len(v))
			for i, s := range v {
				masked[i] = Mask(s)
			}
			flat[o.Key] = masked
		default: // a secret of another type: hidden whole
			flat[o.Key] = "****"
		}
	}
	return flat
}

func flatten(prefix string, v reflect.Value, out map[string]any) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		key := t.Field(i).Tag.Get("mapstructure")
		if prefix != "" {
			key = prefix + "." + key
		}
		f := v.Field(i)
		switch val := f.Interface().(type) {
		case time.Duration:
			out[key] = val.String()
		default:
			if f.Kind() == reflect.Struct {
				flatten(key, f, out)
				continue
			}
			out[key] = val
		}
	}
}

// Mask hides a secret, keeping at most its last four characters so two
// secrets can be told apart.
func Mask(s string) string {
	switch {
	case s == "":
		return ""
	case len(s) < 12:
		return "****"
	default:
		return "****" + s[len(s)-4:]
	}
}

// SortedKeys returns the keys of a Masked map in order.
func SortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// MarshalLogObject logs the effective configuration with secrets masked.
func (c Config) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	m := c.Masked()
	for _, k := range SortedKeys(m) {
		if err := enc.AddReflected(k, m[k]); err != nil {
			return err
		}
	}
	return nil
}

// Egress is the delivery egress policy (the SSRF guard). Validate rejects a
// bad delivery.allowed_cidrs entry; should one get here anyway, the policy
// opens nothing, the safe side.
func (d Delivery) Egress() egress.Policy {
	p, err := egress.New(d.AllowedCIDRs, d.RequireHTTPS)
	if err != nil {
		p, _ = egress.New(nil, d.RequireHTTPS)
	}
	return p
}
