package app

import (
	"context"
	"fmt"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/unibo/webhookd/config"
)

// NewLogger builds the process logger: JSON for production, coloured console
// lines for development.
func NewLogger(cfg config.Log) (*zap.Logger, error) {
	zc, err := loggerConfig(cfg)
	if err != nil {
		return nil, err
	}
	log, err := zc.Build()
	if err != nil {
		return nil, fmt.Errorf("build logger: %w", err)
	}
	return log, nil
}

// loggerConfig is NewLogger's zap configuration. Durations are written as
// strings ("25s", "1.5ms") in both formats: a bare number in JSON leaves the
// reader guessing the unit.
func loggerConfig(cfg config.Log) (zap.Config, error) {
	level, err := zapcore.ParseLevel(cfg.Level)
	if err != nil {
		return zap.Config{}, fmt.Errorf("log.level: %w", err)
	}
	var zc zap.Config
	if cfg.Format == "console" {
		zc = zap.NewDevelopmentConfig()
		zc.EncoderConfig.EncodeLevel = zapcore.CapitalColorLevelEncoder
		zc.DisableStacktrace = true
	} else {
		zc = zap.NewProductionConfig()
		// zap's production default samples repeated lines; every failed
		// delivery must be logged (only circuit-open skips are sampled, by
		// the delivery package itself).
		zc.Sampling = nil
		zc.EncoderConfig.TimeKey = "ts"
		zc.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	}
	zc.EncoderConfig.EncodeDuration = zapcore.StringDurationEncoder
	zc.Level = zap.NewAtomicLevelAt(level)
	return zc, nil
}

// RedisLogger routes go-redis's own pool messages ("failed to dial after 5
// attempts") into zap at debug level: the subscription table already
// reports an outage once, as a warning, and says when it ends. The one
// exception is the Sentinel naming a master (at startup, and after a
// failover): info, since the table says nothing when a failover costs it no
// request.
type RedisLogger struct{ Log *zap.Logger }

// Printf implements go-redis's logging interface.
func (l RedisLogger) Printf(_ context.Context, format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	if strings.HasPrefix(msg, "sentinel: new master") {
		l.Log.Info(msg)
		return
	}
	l.Log.Debug(msg)
}
