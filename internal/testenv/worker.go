package testenv

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/unibo/webhookd/app"
	"github.com/unibo/webhookd/config"
)

// Worker is a webhookd worker running in the test process, exactly as the
// binary wires it, with its logs captured.
type Worker struct {
	*app.Worker
	Logs   *observer.ObservedLogs
	cancel context.CancelFunc
	done   chan error
}

// StartWorker runs a worker and waits until /readyz would say ready.
func StartWorker(t testing.TB, cfg config.Config) *Worker {
	t.Helper()
	w := StartWorkerNoWait(t, cfg)
	Eventually(t, 60*time.Second, "worker ready", w.Ready)
	return w
}

// StartWorkerNoWait runs a worker without waiting for readiness.
func StartWorkerNoWait(t testing.TB, cfg config.Config) *Worker {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	visible := zaptest.NewLogger(t, zaptest.Level(zapcore.InfoLevel)).Core()
	log := zap.New(zapcore.NewTee(core, visible))
	aw, err := app.New(cfg, log)
	if err != nil {
		t.Fatalf("new worker: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &Worker{Worker: aw, Logs: logs, cancel: cancel, done: make(chan error, 1)}
	go func() { w.done <- aw.Run(ctx) }()
	t.Cleanup(func() { w.Stop(t) })
	return w
}

// Ready reports whether every readiness check passes.
func (w *Worker) Ready() bool {
	for _, c := range w.Readiness() {
		if !c.OK {
			return false
		}
	}
	return true
}

// Stop shuts the worker down as SIGTERM does and fails the test if it does
// not stop cleanly. Stopping twice is harmless.
func (w *Worker) Stop(t testing.TB) {
	t.Helper()
	if w.cancel == nil {
		return
	}
	w.cancel()
	w.cancel = nil
	select {
	case err := <-w.done:
		if err != nil {
			t.Errorf("worker stopped with error: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("worker did not stop within 30s")
	}
}
