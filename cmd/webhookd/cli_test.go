package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/unibo/webhookd/internal/testenv"
)

func runBinary(t *testing.T, bin string, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("run webhookd %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errOut.String(), code
}

func TestBinaryUnknownCommandsExitNonZeroWithASuggestion(t *testing.T) {
	bin := binary(t)
	for _, c := range []struct {
		args    []string
		suggest string
	}{
		{[]string{"subscriptions", "lst"}, "list"},
		{[]string{"subs", "delte"}, "delete"},
		{[]string{"dlq", "lsit"}, "list"},
		{[]string{"config", "prnt"}, "print"},
		{[]string{"subscriptons"}, "subscriptions"},
	} {
		out, errOut, code := runBinary(t, bin, os.Environ(), c.args...)
		want := fmt.Sprintf("unknown command %q", c.args[len(c.args)-1])
		if code == 0 || !strings.Contains(errOut, want) || !strings.Contains(errOut, "Did you mean this?\n\t"+c.suggest+"\n") {
			t.Errorf("webhookd %s: exit %d, stderr %q, want non-zero and %s ... Did you mean this? %s",
				strings.Join(c.args, " "), code, errOut, want, c.suggest)
		}
		if out != "" {
			t.Errorf("webhookd %s printed on stdout: %q", strings.Join(c.args, " "), out)
		}
	}
	// One slip from "list" suggests list, not also get and test (two edits).
	if _, errOut, _ := runBinary(t, bin, os.Environ(), "subscriptions", "lst"); strings.Contains(errOut, "\tget") || strings.Contains(errOut, "\ttest") {
		t.Errorf("suggestions beyond the closest: %q", errOut)
	}
	for _, group := range []string{"subscriptions", "dlq", "config"} {
		out, _, code := runBinary(t, bin, os.Environ(), group)
		if code != 0 || !strings.Contains(out, "Available Commands:") {
			t.Errorf("webhookd %s: exit %d, want 0 and its help:\n%s", group, code, out)
		}
	}
}

func TestBinaryRedisDownPrintsOnlyTheError(t *testing.T) {
	bin := binary(t)
	env := append(os.Environ(), "WEBHOOKD_REDIS_ADDR=127.0.0.1:1")
	out, errOut, code := runBinary(t, bin, env, "subscriptions", "list")
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	if code == 0 || out != "" || len(lines) != 1 || !strings.HasPrefix(lines[0], "webhookd: load subscriptions: ") ||
		!strings.Contains(lines[0], "connection refused") {
		t.Fatalf("exit %d, stdout %q, stderr (%d lines):\n%s\nwant exit 1 and one line with the error", code, out, len(lines), errOut)
	}
}

func TestBinaryRedisDBOutOfRangeNamesTheKey(t *testing.T) {
	bin := binary(t)
	services := testenv.Start(t)
	if !services.Real {
		t.Skip("miniredis has a database at every index; real Redis has 16 by default")
	}
	cfg := services.Config(t)
	env := append(testenv.BinaryEnv(t, cfg), "WEBHOOKD_REDIS_DB=99")
	_, errOut, code := runBinary(t, bin, env, "subscriptions", "list")
	if code == 0 || !strings.Contains(errOut, "redis.db (WEBHOOKD_REDIS_DB)") || !strings.Contains(errOut, "no database 99") {
		t.Fatalf("exit %d, stderr %q: want the key redis.db named", code, errOut)
	}
	// The worker says the same, and does not call Redis unavailable.
	p := testenv.StartBinary(t, bin, env)
	testenv.Eventually(t, 30*time.Second, "the worker's warning", func() bool {
		return strings.Contains(p.Output(), "Redis answers but refuses redis.db; subscription table not loaded, retrying")
	})
	if code, err := p.Terminate(30 * time.Second); err != nil || code != 0 {
		t.Errorf("exit after SIGTERM: %d, %v", code, err)
	}
	if logs := p.Output(); strings.Contains(logs, "Redis unavailable") || !strings.Contains(logs, "no database 99") {
		t.Errorf("worker log:\n%s", testenv.Tail(logs, 20))
	}
}
