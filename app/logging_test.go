package app

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/unibo/webhookd/config"
)

// go-redis's own messages are debug lines, except a Sentinel naming a new
// master, which an operator looking at info lines must see after a failover.
// The formats are go-redis's (sentinel.go, pool.go).
func TestRedisLoggerLevels(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	l := RedisLogger{Log: zap.New(core)}
	l.Printf(context.Background(), "sentinel: new master=%q addr=%q", "webhookd", "10.0.0.2:6379")
	l.Printf(context.Background(), "redis: connection pool: failed to dial after %d attempts: %v", 5, "refused")
	all := logs.All()
	if len(all) != 2 {
		t.Fatalf("%d lines, want 2", len(all))
	}
	if all[0].Level != zapcore.InfoLevel || all[0].Message != `sentinel: new master="webhookd" addr="10.0.0.2:6379"` {
		t.Errorf("new master line: %v %q, want info", all[0].Level, all[0].Message)
	}
	if all[1].Level != zapcore.DebugLevel {
		t.Errorf("pool line at %v, want debug", all[1].Level)
	}
}

// Durations are written as strings with their unit in both formats: JSON
// once wrote "shutdown_timeout":25, leaving the unit to guess.
func TestLoggerWritesDurationsWithTheirUnit(t *testing.T) {
	for _, format := range []string{"json", "console"} {
		t.Run(format, func(t *testing.T) {
			zc, err := loggerConfig(config.Log{Level: "info", Format: format})
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "log")
			zc.OutputPaths = []string{path}
			log, err := zc.Build()
			if err != nil {
				t.Fatal(err)
			}
			log.Info("stopping consumer", zap.Duration("shutdown_timeout", 25*time.Second), zap.Duration("duration", 1500*time.Microsecond))
			_ = log.Sync()
			out, _ := os.ReadFile(path)
			want := []string{`"shutdown_timeout":"25s"`, `"duration":"1.5ms"`}
			if format == "console" {
				want = []string{`"shutdown_timeout": "25s"`, `"duration": "1.5ms"`}
			}
			for _, w := range want {
				if !strings.Contains(string(out), w) {
					t.Errorf("log lacks %s:\n%s", w, out)
				}
			}
		})
	}
}
