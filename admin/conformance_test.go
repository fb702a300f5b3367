package admin_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/unibo/webhookd/admin"
	"github.com/unibo/webhookd/delivery"
	"github.com/unibo/webhookd/internal/testenv"
)

// schemathesisVersion is the version .ci/run installs.
const schemathesisVersion = "4.32.5"

// schemathesis returns the Schemathesis command: $WEBHOOKD_TEST_SCHEMATHESIS,
// else st or schemathesis on PATH. Without it the test fails under CI=true
// and skips, saying how to install it, elsewhere.
func schemathesis(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("WEBHOOKD_TEST_SCHEMATHESIS"); p != "" {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("WEBHOOKD_TEST_SCHEMATHESIS=%s: %v", p, err)
		}
		return p
	}
	for _, name := range []string{"st", "schemathesis"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const install = "python3 -m venv .services/schemathesis && .services/schemathesis/bin/pip install schemathesis==" + schemathesisVersion +
		" (Python 3.11 or later) in the repository, where make test finds it; or set WEBHOOKD_TEST_SCHEMATHESIS to an st command"
	if os.Getenv("CI") == "true" {
		t.Fatalf("Schemathesis is not installed, so the admin API cannot be checked against its OpenAPI document; .ci/run installs it: %s", install)
	}
	t.Skipf("SKIPPED: the admin API's conformance to admin/openapi.yaml is NOT checked: Schemathesis is not installed. Install it: %s", install)
	return ""
}

// The admin API, served on the test Redis and Kafka, conforms to the
// OpenAPI document it serves at GET /v1/openapi.yaml: Schemathesis generates
// requests from the document (valid ones, which must be accepted, and
// invalid ones, which must be refused), walks the links from a created
// subscription to the routes that use its id, and checks every answer
// against the document (status, content type, headers, schema), with all
// of its checks. WEBHOOKD_TEST_SCHEMATHESIS_SEED replays a run.
func TestAPIConformsToItsOpenAPIDocument(t *testing.T) {
	if testing.Short() {
		t.Skip("Schemathesis run skipped in -short mode")
	}
	st := schemathesis(t)
	f := newFixture(t, nil)
	dlq := f.cfg
	dlq.Kafka.Topics = []string{f.cfg.Delivery.DLQ.Topic}
	testenv.CreateTopics(t, dlq)
	// A dead letter for a subscription that does not exist, so that
	// listings have a record to check and replays of it answer 404.
	deadLetter(t, f, "conformance-no-such-subscription", "req-conformance", time.Now().Add(-time.Minute))

	var probes atomic.Int64
	core, logs := observer.New(zapcore.InfoLevel)
	h, err := admin.NewHandler(admin.Deps{
		Store:       f.store,
		DeadLetters: admin.KafkaDeadLetters{Config: f.cfg, Store: f.store},
		// The partner: every URL the document allows is a name on the
		// internet, which a test must not call.
		Probe: func(context.Context, delivery.Endpoint, []byte, time.Duration) delivery.ProbeResult {
			probes.Add(1)
			return delivery.ProbeResult{Status: http.StatusOK, Duration: time.Millisecond, Excerpt: "ok"}
		},
		Token: testToken,
		Log:   zap.New(core),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := admin.Listen("127.0.0.1:0", h, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Run(ctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("admin server: %v", err)
		}
	})

	version, err := exec.Command(st, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("%s --version: %v\n%s", st, err, version)
	}
	seed := strconv.FormatInt(time.Now().UnixNano()%1_000_000_000, 10)
	if s := os.Getenv("WEBHOOKD_TEST_SCHEMATHESIS_SEED"); s != "" {
		seed = s
	}
	base := "http://" + srv.Addr().String()
	runCtx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(runCtx, st, "--no-color", "run", base+"/v1/openapi.yaml",
		"--header", "Authorization: Bearer "+testToken,
		"--checks", "all",
		"--max-examples", "30",
		"--seed", seed,
		"--workers", "2",
		"--request-timeout", "20",
		"--max-failures", "20",
	)
	// Its Hypothesis and crash databases go to a directory of the test's own.
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost", "COLUMNS=120")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case runCtx.Err() != nil:
		t.Fatalf("Schemathesis (seed %s) did not finish in 5 minutes:\n%s", seed, out)
	case err != nil && !errors.As(err, &exit):
		t.Fatalf("%s: %v\n%s", st, err, out)
	}
	if err != nil {
		t.Fatalf("the admin API and admin/openapi.yaml disagree (Schemathesis seed %s; replay with WEBHOOKD_TEST_SCHEMATHESIS_SEED=%s), %v:\n%s",
			seed, seed, err, out)
	}
	t.Logf("%s (seed %s, %s, on %s): %s", strings.TrimSpace(string(version)), seed, time.Since(start).Round(time.Second), testenv.Start(t).Backends(), lastLines(string(out), 1))
	if testing.Verbose() {
		t.Logf("%s", out)
	}

	// The run reached the API's logic, not only its refusals.
	created := 0
	for _, e := range logs.All() {
		if line := e.Message + fmt.Sprint(e.ContextMap()); strings.Contains(line, testToken) {
			t.Errorf("the admin token in a log line: %s", line)
		}
	}
	for _, e := range logs.FilterMessage("admin request").All() {
		c := e.ContextMap()
		if c["method"] == http.MethodPost && c["path"] == "/v1/subscriptions" && c["status"] == int64(http.StatusCreated) {
			created++
		}
	}
	if created == 0 || probes.Load() == 0 {
		t.Fatalf("Schemathesis created %d subscriptions and sent %d probes: it never got past validation\n%s", created, probes.Load(), out)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " / ")
}
