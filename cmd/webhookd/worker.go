package main

import (
	"context"
	"os"
	"runtime/debug"

	"github.com/redis/go-redis/v9"

	"github.com/unibo/webhookd/app"
	"github.com/unibo/webhookd/config"
)

// runWorker is the default command: consume, match, deliver.
func runWorker(ctx context.Context, g *globals) error {
	cfg, err := config.Load(g.configPath) // unknown variables: logged by app.Run

	if err != nil {
		return err
	}
	if os.Getenv("GOGC") == "" {
		// Deliveries allocate little that lives long: trading some heap for
		// half the GC work is worth it (the 1M-event backlog stays under
		// 100 MB of RSS). GOGC in the environment overrides it.
		debug.SetGCPercent(200)
	}
	log, err := app.NewLogger(cfg.Log)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	redis.SetLogger(app.RedisLogger{Log: log.Named("redis")}) // go-redis has only a process-wide logger
	w, err := app.New(cfg, log)
	if err != nil {
		return err
	}
	return w.Run(ctx)
}
