package config

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A duration written without a unit was read as nanoseconds from a file
// (`timeout: 30` = 30 ns: every delivery timed out) and refused from the
// environment. It is refused everywhere, naming the key, its variable and
// the fix; a bare 0 is zero in any unit and is left to Validate.
func TestDurationWithoutUnitIsRefusedEverywhere(t *testing.T) {
	cases := []struct {
		name, file, env, want string
	}{
		{"file int", "delivery: {timeout: 30}\n", "",
			"delivery.timeout (WEBHOOKD_DELIVERY_TIMEOUT): 30 has no unit; write a duration such as 30s"},
		{"file string", "delivery: {timeout: \"30\"}\n", "",
			`delivery.timeout (WEBHOOKD_DELIVERY_TIMEOUT): "30" has no unit; write a duration such as 30s`},
		{"file float", "delivery: {breaker: {cooldown: 1.5}}\n", "",
			"delivery.breaker.cooldown (WEBHOOKD_DELIVERY_BREAKER_COOLDOWN): 1.5 has no unit; write a duration such as 1.5s"},
		{"env", "", "30",
			`delivery.timeout (WEBHOOKD_DELIVERY_TIMEOUT): "30" has no unit; write a duration such as 30s`},
		{"bare zero", "delivery: {timeout: 0}\n", "",
			"delivery.timeout (WEBHOOKD_DELIVERY_TIMEOUT): must be a positive duration such as 5s, got 0s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := ""
			if tc.file != "" {
				path = writeFile(t, tc.file)
			}
			if tc.env != "" {
				t.Setenv("WEBHOOKD_DELIVERY_TIMEOUT", tc.env)
			}
			cfg, err := Load(path)
			if err == nil {
				t.Fatalf("accepted: delivery.timeout = %s", cfg.Delivery.Timeout)
			}
			if err.Error() != tc.want {
				t.Fatalf("got:\n%v\nwant:\n%s", err, tc.want)
			}
		})
	}
	cfg, err := Load(writeFile(t, "delivery: {timeout: 45s, breaker: {cooldown: 1m30s}}\n"))
	if err != nil || cfg.Delivery.Timeout != 45*time.Second || cfg.Delivery.Breaker.Cooldown != 90*time.Second {
		t.Fatalf("durations with units: %v %+v", err, cfg.Delivery)
	}
}

// Every problem of a file and the environment is reported at once, one a
// line: the key's full path, its variable, what was expected, the nearest
// key for a typo, and Validate's own findings beside the decoder's.
func TestEveryProblemIsReportedAtOnceNamingKeyVariableAndType(t *testing.T) {
	path := writeFile(t, `
kafka:
  group_idd: payouts
  partitions: twelve
  tls: on
  sasl:
    password: 0123
kafak:
  brokers: [a:1]
redis:
  database: 3
delivery:
  require_https: yes
  retry:
    on: [408, 5xx, [a]]
consumer:
  max_in_flight: 0
`)
	t.Setenv("WEBHOOKD_REDIS_DB", "three")
	t.Setenv("WEBHOOKD_SHUTDOWN_TIMEOUT", "25")
	_, err := Load(path)
	if err == nil {
		t.Fatal("accepted")
	}
	want := []string{
		"kafak: unknown key in " + path + "; did you mean kafka?",
		"kafka.group_idd: unknown key in " + path + "; did you mean kafka.group_id (WEBHOOKD_KAFKA_GROUP_ID)?",
		"kafka.tls: a section (kafka.tls.enabled, kafka.tls.ca_file, ...), not a value, got \"on\" in " + path,
		"redis.database: unknown key in " + path + "; did you mean redis.db (WEBHOOKD_REDIS_DB)?",
		`kafka.partitions (WEBHOOKD_KAFKA_PARTITIONS): expected an integer, got "twelve"`,
		"kafka.sasl.password (WEBHOOKD_KAFKA_SASL_PASSWORD): expected a string, got a number; put the value in quotes: YAML reads unquoted digits as a number (0123 becomes 83)",
		`redis.db (WEBHOOKD_REDIS_DB): expected an integer, got "three"`,
		`delivery.require_https (WEBHOOKD_DELIVERY_REQUIRE_HTTPS): expected true or false, got "yes"`,
		"delivery.retry.on (WEBHOOKD_DELIVERY_RETRY_ON): entry 3: expected a string, got a list",
		`shutdown_timeout (WEBHOOKD_SHUTDOWN_TIMEOUT): "25" has no unit; write a duration such as 25s`,
		"consumer.max_in_flight (WEBHOOKD_CONSUMER_MAX_IN_FLIGHT): must be at least 1, got 0",
	}
	if got := strings.Split(err.Error(), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got:\n%s\n\nwant:\n%s", err, strings.Join(want, "\n"))
	}
	var ke *KeyError
	if !errors.As(err, &ke) {
		t.Fatal("the problems are not KeyErrors")
	}
}

// A key that fails to decode keeps its default, and Validate's verdict on
// that default is not added: it would be about a value nobody wrote.
func TestNoSecondMessageForAKeyThatDidNotDecode(t *testing.T) {
	t.Setenv("WEBHOOKD_CONSUMER_MAX_IN_FLIGHT", "many")
	t.Setenv("WEBHOOKD_CONSUMER_MAX_IN_FLIGHT_TOTAL", "8")
	_, err := Load("")
	want := `consumer.max_in_flight (WEBHOOKD_CONSUMER_MAX_IN_FLIGHT): expected an integer, got "many"` + "\n" +
		"consumer.max_in_flight_total (WEBHOOKD_CONSUMER_MAX_IN_FLIGHT_TOTAL): must be at least consumer.max_in_flight (256), got 8"
	if err == nil || err.Error() != want {
		t.Fatalf("got:\n%v\nwant:\n%s", err, want)
	}
}

// Values YAML types on its own are read as meant: lists of statuses, integers
// written as floats, quoted integers; the environment's strings likewise.
func TestValuesOfEveryTypeDecode(t *testing.T) {
	path := writeFile(t, `
Kafka:
  Group_ID: from-file
  fetch_max_bytes: 1e6
  partitions: "6"
  create_topics: false
delivery:
  retry: {on: [transport, 408, 5xx], max_attempts: 3}
  max_response_bytes: 1024
subscriptions:
  previous_encryption_keys:
`)
	t.Setenv("WEBHOOKD_OPS_PPROF", "true")
	t.Setenv("WEBHOOKD_KAFKA_TOPICS", " a, b ,,c ")
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	k := cfg.Kafka
	if k.GroupID != "from-file" || k.FetchMaxBytes != 1000000 || k.Partitions != 6 || k.CreateTopics ||
		strings.Join(k.Topics, "|") != "a|b|c" || !cfg.Ops.Pprof ||
		strings.Join(cfg.Delivery.Retry.On, "|") != "transport|408|5xx" || cfg.Delivery.Retry.MaxAttempts != 3 ||
		cfg.Delivery.MaxResponseBytes != 1024 || len(cfg.Subscriptions.PreviousEncryptionKeys) != 0 {
		t.Fatalf("decoded %+v", cfg)
	}
}

// A secret that cannot be decoded is not shown in the error.
func TestUndecodableSecretIsNotQuoted(t *testing.T) {
	// A password one level too high (kafka.sasl holds kafka.sasl.password)
	// is named by its kind only.
	_, err := Load(writeFile(t, "kafka: {sasl: hunter2secret}\n"))
	if err == nil || strings.Contains(err.Error(), "hunter2secret") || !strings.Contains(err.Error(), "kafka.sasl: a section") {
		t.Fatalf("got %v", err)
	}
	_, err = Load(writeFile(t, "redis: {password: 0777}\nadmin: {token: 98765432109876543210}\n"))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, leak := range []string{"511", "0777", "9876543210", "9.87"} {
		if strings.Contains(err.Error(), leak) {
			t.Fatalf("the error shows the secret: %v", err)
		}
	}
	if !strings.Contains(err.Error(), "admin.token (WEBHOOKD_ADMIN_TOKEN): expected a string, got a number") ||
		!strings.Contains(err.Error(), "redis.password (WEBHOOKD_REDIS_PASSWORD): expected a string, got a number") {
		t.Fatalf("got %v", err)
	}
}

func TestClosest(t *testing.T) {
	cases := []struct {
		in, want string
		from     []string
	}{
		{"kafka.group_idd", "kafka.group_id", fileKeys()},
		{"kafka.partitons", "kafka.partitions", fileKeys()},
		{"kafak", "kafka", fileKeys()},
		{"redis.database", "redis.db", fileKeys()},
		{"delivery.retry.max_attempt", "delivery.retry.max_attempts", fileKeys()},
		{"kafka.tls.cert", "kafka.tls.cert_file", fileKeys()},
		{"kafka.group", "kafka.group_id", fileKeys()},
		{"redis.host", "", fileKeys()},
		{"frobnicate", "", fileKeys()},
	}
	for _, tc := range cases {
		got, ok := Closest(tc.in, tc.from)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("Closest(%s) = %q, %v; want %q", tc.in, got, ok, tc.want)
		}
	}
}

// A file that cannot be read or parsed is the one problem reported: the
// defaults are not validated in its place.
func TestUnreadableFileIsTheOneProblem(t *testing.T) {
	for name, path := range map[string]string{
		"missing":  filepath.Join(t.TempDir(), "missing.yaml"),
		"not YAML": writeFile(t, "kafka: [\n"),
	} {
		_, err := Load(path)
		if err == nil || strings.Count(err.Error(), "\n") != 0 || !strings.HasPrefix(err.Error(), "config file "+path+": ") {
			t.Errorf("%s: got %v", name, err)
		}
	}
}
