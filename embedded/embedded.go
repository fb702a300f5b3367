// Package embedded starts in-process stand-ins for Kafka (franz-go's kfake,
// which speaks the Kafka wire protocol) and Redis (miniredis), for the demo
// and for a test run on a machine where no real services run.
package embedded

import (
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/twmb/franz-go/pkg/kfake"
)

// Kafka is an in-process single-broker Kafka on a random loopback port.
type Kafka struct{ cluster *kfake.Cluster }

// StartKafka starts the broker. Topics are created by webhookd itself or by
// the caller, as on a real cluster with auto-creation off.
func StartKafka() (*Kafka, error) {
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.GroupMinSessionTimeout(time.Second),
	)
	if err != nil {
		return nil, fmt.Errorf("start embedded kafka: %w", err)
	}
	return &Kafka{cluster: c}, nil
}

// Brokers are the bootstrap addresses.
func (k *Kafka) Brokers() []string { return k.cluster.ListenAddrs() }

// Close stops the broker.
func (k *Kafka) Close() { k.cluster.Close() }

// StartRedis starts an in-process Redis on a random loopback port.
func StartRedis() (*miniredis.Miniredis, error) {
	mr, err := miniredis.Run()
	if err != nil {
		return nil, fmt.Errorf("start embedded redis: %w", err)
	}
	return mr, nil
}
