// Command bench measures webhookd as production runs it: the binary built
// from this module, started as a subprocess configured only through
// WEBHOOKD_* variables, consuming a Kafka topic and POSTing to receivers in
// the bench process. It uses the real Kafka and Redis named by
// WEBHOOKD_TEST_KAFKA_BROKERS and WEBHOOKD_TEST_REDIS_ADDR, in-process ones
// otherwise, and prints a Markdown table of the results, also saved with
// their JSON under bench/results/.
//
//	go run ./bench [-scenarios fast,slow50,…,https-h2] [-scale 0.1] [-profile] [-results DIR]
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type options struct {
	scenarios []string
	scale     float64
	profile   bool
	keep      bool
	bin       string
	results   string
	drainOnly bool
}

// scenarioNames in the order they run; fast first, since dead and the
// https ones compare against it. The ones after backlog are issue 11's
// partners as they are.
var scenarioNames = []string{"fast", "slow50", "slow500", "dead", "latency", "backlog",
	"slow6s", "ratelimited", "hung", "paused", "https-h1", "https-h2"}

func parseFlags() (options, map[string]string, error) {
	var o options
	list := flag.String("scenarios", strings.Join(scenarioNames, ","), "comma-separated scenarios to run: "+strings.Join(scenarioNames, ", "))
	flag.Float64Var(&o.scale, "scale", 1, "multiply every event count and window by this (0.05 for a quick check)")
	flag.BoolVar(&o.profile, "profile", false, "save CPU and heap profiles of webhookd during the fast scenario, and in the hung one from 5 s after the hang, into the results directory and print their top 25")
	flag.BoolVar(&o.keep, "keep", false, "keep each scenario's topic, consumer groups and Redis keys")
	flag.StringVar(&o.bin, "webhookd", "", "benchmark this webhookd binary instead of building ./cmd/webhookd")
	flag.StringVar(&o.results, "results", "", "write results and webhookd logs into this directory instead of bench/results/")
	flag.BoolVar(&o.drainOnly, "drain-only", false, "fast: measure webhookd's drain only, without the raw HTTP ceiling and the naive consumer (for A/B runs)")
	flag.Parse()
	if o.scale <= 0 {
		return o, nil, errors.New("-scale must be positive")
	}
	for _, s := range strings.Split(*list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !contains(scenarioNames, s) {
			return o, nil, fmt.Errorf("unknown scenario %q (want %s)", s, strings.Join(scenarioNames, ", "))
		}
		o.scenarios = append(o.scenarios, s)
	}
	shown := map[string]string{"scenarios": strings.Join(o.scenarios, ","),
		"scale": strconv.FormatFloat(o.scale, 'g', -1, 64), "profile": strconv.FormatBool(o.profile),
		"drain-only": strconv.FormatBool(o.drainOnly)}
	if o.bin != "" {
		shown["webhookd"] = o.bin
	}
	return o, shown, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// bench holds what every scenario shares.
type bench struct {
	opts        options
	svc         *services
	bin         string
	root        string
	resultsDir  string
	logDir      string
	tmp         string
	runID       string
	clock       *clock
	fastPerSub  float64 // the fast scenario's deliveries/s per subscription
	fastRate    float64 // the fast scenario's deliveries/s
	fastCPU10k  float64 // the fast scenario's CPU-s per 10k deliveries
	profileTops []string
}

// n scales an event count.
func (b *bench) n(base int) int64 { return max(1, int64(float64(base)*b.opts.scale)) }

// dur scales a duration, never below floor.
func (b *bench) dur(base, floor time.Duration) time.Duration {
	return max(floor, time.Duration(float64(base)*b.opts.scale))
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == rawSubcommand {
		if err := rawClientMain(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "bench rawclient:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	opts, shownFlags, err := parseFlags()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	started := time.Now()
	b := &bench{opts: opts, clock: &clock{base: started}}
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(gomod)) == "" {
		return fmt.Errorf("find the module root (go env GOMOD): %v", err)
	}
	b.root = filepath.Dir(strings.TrimSpace(string(gomod)))
	b.resultsDir = filepath.Join(b.root, "bench", "results")
	if opts.results != "" {
		b.resultsDir = opts.results
	}
	tmp, err := os.MkdirTemp("", "webhookd-bench-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	b.tmp = tmp
	b.logDir = b.resultsDir // <scenario>.stderr.log: webhookd's own log of the run
	if err := os.MkdirAll(b.resultsDir, 0o755); err != nil {
		return err
	}
	id := make([]byte, 3)
	_, _ = rand.Read(id)
	b.runID = started.UTC().Format("0102-1504") + "-" + hex.EncodeToString(id)

	if b.bin = opts.bin; b.bin == "" {
		b.progress("setup", "building ./cmd/webhookd")
		if b.bin, err = buildWebhookd(ctx, b.root, tmp); err != nil {
			return err
		}
	}
	if b.svc, err = startServices(); err != nil {
		return err
	}
	defer b.svc.close()
	rep := &report{Started: started, Flags: shownFlags, Machine: describeMachine(b.svc, b.root)}
	b.progress("setup", "Kafka: %s; Redis: %s", rep.Machine.Kafka, rep.Machine.Redis)
	if b.svc.KafkaKind == "real" {
		if err := b.warmUp(ctx); err != nil {
			return err
		}
	}

	scenarios := map[string]func(context.Context, *scenarioResult) error{
		"fast":    b.scenarioFast,
		"slow50":  b.scenarioSlow(50*time.Millisecond, 60_000, 4000),
		"slow500": b.scenarioSlow(500*time.Millisecond, 20_000, 0),
		"dead":    b.scenarioDead,
		"latency": b.scenarioLatency,
		"backlog": b.scenarioBacklog,

		"slow6s":      b.scenarioSlow6s,
		"ratelimited": b.scenarioRateLimited,
		"hung":        b.scenarioHung,
		"paused":      b.scenarioPaused,
		"https-h1":    b.scenarioHTTPS(false),
		"https-h2":    b.scenarioHTTPS(true),
	}
	for _, name := range scenarioNames {
		if !contains(opts.scenarios, name) || ctx.Err() != nil {
			continue
		}
		res := &scenarioResult{Name: name}
		t := time.Now()
		b.progress(name, "starting")
		if err := scenarios[name](ctx, res); err != nil {
			res.Error = err.Error()
			b.progress(name, "FAILED: %v", err)
		}
		res.Seconds = time.Since(t).Seconds()
		b.progress(name, "done in %.0f s", res.Seconds)
		rep.Scenarios = append(rep.Scenarios, res)
	}
	rep.Seconds = time.Since(started).Seconds()
	for _, top := range b.profileTops {
		fmt.Println(top)
	}
	md := rep.markdown()
	fmt.Println(md)
	if err := rep.save(b.resultsDir); err != nil {
		return fmt.Errorf("save results: %w", err)
	}
	fmt.Printf("saved %s/latest.{json,md} (%s)\n", b.resultsDir, time.Duration(rep.Seconds*float64(time.Second)).Round(time.Second))
	return ctx.Err()
}
