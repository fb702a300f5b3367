package testenv

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/unibo/webhookd/config"
)

// RedisHA names the Redis Sentinel and Cluster deployments
// scripts/services-up.sh starts (redis-ha) beside the plain Redis:
//
//	WEBHOOKD_TEST_REDIS_SENTINEL_ADDRS   the Sentinel(s) (127.0.0.1:26379)
//	WEBHOOKD_TEST_REDIS_SENTINEL_MASTER  the master name they monitor (webhookd-test)
//	WEBHOOKD_TEST_REDIS_CLUSTER_ADDRS    the cluster's nodes (127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002)
//
// There are no in-process stand-ins for these: the tests that need them skip
// when they are unset.
type RedisHA struct {
	SentinelAddrs  []string
	SentinelMaster string
	ClusterAddrs   []string
}

func redisHAFromEnv() RedisHA {
	split := func(s string) []string {
		if s == "" {
			return nil
		}
		return strings.Split(s, ",")
	}
	return RedisHA{
		SentinelAddrs:  split(os.Getenv("WEBHOOKD_TEST_REDIS_SENTINEL_ADDRS")),
		SentinelMaster: os.Getenv("WEBHOOKD_TEST_REDIS_SENTINEL_MASTER"),
		ClusterAddrs:   split(os.Getenv("WEBHOOKD_TEST_REDIS_CLUSTER_ADDRS")),
	}
}

// RedisSentinel returns the Sentinel deployment, or skips the test.
func RedisSentinel(t testing.TB) RedisHA {
	t.Helper()
	h := redisHAFromEnv()
	if len(h.SentinelAddrs) == 0 || h.SentinelMaster == "" {
		t.Skip("Redis Sentinel not configured: set WEBHOOKD_TEST_REDIS_SENTINEL_ADDRS and WEBHOOKD_TEST_REDIS_SENTINEL_MASTER " +
			"(scripts/services-up.sh starts one; .ci/run sets them)")
	}
	return h
}

// RedisCluster returns the Cluster deployment, or skips the test.
func RedisCluster(t testing.TB) RedisHA {
	t.Helper()
	h := redisHAFromEnv()
	if len(h.ClusterAddrs) < 2 {
		t.Skip("Redis Cluster not configured: set WEBHOOKD_TEST_REDIS_CLUSTER_ADDRS to two or more of its nodes " +
			"(scripts/services-up.sh starts one; .ci/run sets it)")
	}
	return h
}

// Sentinel points cfg at the Sentinel deployment, keeping its key prefix.
func (h RedisHA) Sentinel(cfg *config.Config) {
	cfg.Redis.Addr = ""
	cfg.Redis.Addrs = h.SentinelAddrs
	cfg.Redis.MasterName = h.SentinelMaster
}

// Cluster points cfg at the Cluster deployment with a key prefix of its own
// holding a hash tag, as Cluster mode requires.
func (h RedisHA) Cluster(cfg *config.Config) {
	cfg.Redis.Addr = ""
	cfg.Redis.Addrs = h.ClusterAddrs
	cfg.Redis.KeyPrefix = "{webhookd-test-" + ID() + "}:"
}

// ClusterEndpoint points cfg at one node of the Cluster deployment with
// redis.cluster set, as a cluster's configuration endpoint is given; the
// client finds the other nodes. The key prefix holds a hash tag.
func (h RedisHA) ClusterEndpoint(cfg *config.Config) {
	h.Cluster(cfg)
	cfg.Redis.Addrs = nil
	cfg.Redis.Addr = h.ClusterAddrs[len(h.ClusterAddrs)-1]
	cfg.Redis.Cluster = true
}

// SentinelClient returns a client for the first Sentinel, closed at the end
// of the test.
func (h RedisHA) SentinelClient(t testing.TB) *redis.SentinelClient {
	t.Helper()
	c := redis.NewSentinelClient(&redis.Options{Addr: h.SentinelAddrs[0]})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// SentinelMasterAddr asks the first Sentinel which server is the master now.
func (h RedisHA) SentinelMasterAddr(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := redis.NewSentinelClient(&redis.Options{Addr: h.SentinelAddrs[0]})
	defer func() { _ = c.Close() }()
	addr, err := c.GetMasterAddrByName(ctx, h.SentinelMaster).Result()
	if err != nil || len(addr) != 2 {
		t.Fatalf("SENTINEL get-master-addr-by-name %s: %v %v", h.SentinelMaster, addr, err)
	}
	return addr[0] + ":" + addr[1]
}
