package main

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/unibo/webhookd/app"
)

// runWorker is the default command: consume, match, deliver.
func runWorker(ctx context.Context, g *globals) error {
	cfg, err := g.load()
	if err != nil {
		return err
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
