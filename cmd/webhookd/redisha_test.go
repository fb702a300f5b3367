package main

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/unibo/webhookd/config"
	"github.com/unibo/webhookd/internal/testenv"
)

// The binary configured only through WEBHOOKD_REDIS_* (addresses as one
// comma-separated variable, the master name, a {hash tag} prefix), as the
// README's examples show: the subscriptions CLI writes and lists the table
// over Redis Sentinel and Cluster, and the worker becomes ready on it. Over
// Sentinel, the master it follows is logged at info level.
func TestBinaryOverRedisSentinelAndCluster(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(t *testing.T, cfg *config.Config)
	}{
		{"sentinel", func(t *testing.T, cfg *config.Config) { testenv.RedisSentinel(t).Sentinel(cfg) }},
		{"cluster", func(t *testing.T, cfg *config.Config) { testenv.RedisCluster(t).Cluster(cfg) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testenv.Start(t).Config(t)
			tc.set(t, &cfg)
			bin := binary(t)
			env := testenv.BinaryEnv(t, cfg)
			run := func(args ...string) string {
				t.Helper()
				cmd := exec.Command(bin, args...)
				cmd.Env = env
				out, err := cmd.Output()
				if err != nil {
					var stderr []byte
					if ee, ok := err.(*exec.ExitError); ok {
						stderr = ee.Stderr
					}
					t.Fatalf("webhookd %s: %v\n%s", strings.Join(args, " "), err, stderr)
				}
				return strings.TrimSpace(string(out))
			}
			id := run("subscriptions", "add", "--tenant", "acme", "--url", "https://hooks.acme.example/"+tc.name,
				"--events", "PRIZE_PAYOUT_SUCCEEDED")
			var listed []struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal([]byte(run("subscriptions", "list", "-o", "json")), &listed); err != nil {
				t.Fatalf("list -o json: %v", err)
			}
			if len(listed) != 1 || listed[0].ID != id {
				t.Fatalf("listed %+v, want the one added (%s)", listed, id)
			}

			p := testenv.StartBinary(t, bin, env)
			p.WaitReady(t, 60*time.Second)
			if code, err := p.Terminate(30 * time.Second); err != nil || code != 0 {
				t.Fatalf("exit after SIGTERM: code %d, %v\n%s", code, err, testenv.Tail(p.Output(), 30))
			}
			if tc.name != "sentinel" {
				return
			}
			for _, line := range strings.Split(p.Output(), "\n") {
				var l struct{ Level, Msg string }
				if json.Unmarshal([]byte(line), &l) == nil && l.Level == "info" && strings.HasPrefix(l.Msg, "sentinel: new master") {
					return
				}
			}
			t.Fatalf("no info line naming the Sentinel's master:\n%s", testenv.Tail(p.Output(), 30))
		})
	}
}
