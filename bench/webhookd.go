package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/unibo/webhookd/config"
)

// buildWebhookd builds the production binary from the module at root.
func buildWebhookd(ctx context.Context, root, dir string) (string, error) {
	bin := filepath.Join(dir, "webhookd")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/webhookd")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/webhookd: %w\n%s", err, out)
	}
	return bin, nil
}

// procStats is what the bench saw of one webhookd process.
type procStats struct {
	CPUSeconds    float64  `json:"cpu_seconds"`      // utime+stime when the work was done
	PeakRSSMB     float64  `json:"peak_rss_mb"`      // max VmRSS over 100 ms samples
	HWMMB         float64  `json:"vm_hwm_mb"`        // VmHWM (kernel's own peak) when the work was done
	Samples       int      `json:"rss_samples"`      // VmRSS samples taken
	StartToReady  float64  `json:"start_to_ready_s"` // exec to /readyz 200
	ShutdownS     float64  `json:"shutdown_s"`       // SIGTERM to exit
	ExitCode      int      `json:"exit_code"`        // -1 when killed
	StderrLines   int      `json:"stderr_lines"`     // log lines at warn and above (log.level=warn)
	StderrSummary []string `json:"stderr_summary,omitempty"`
	StderrLog     string   `json:"stderr_log"`
}

// webhookd is one running production binary, configured only through env.
type webhookd struct {
	cmd     *exec.Cmd
	OpsAddr string
	logPath string
	logFile *os.File
	started time.Time
	exited  chan struct{}
	waitErr error
	stats   procStats

	mu      sync.Mutex
	peakRSS int64 // kB
	samples int
	stop    chan struct{}
	sampled sync.WaitGroup
}

// startWebhookd execs bin for the stage, with every WEBHOOKD_* variable of
// the bench's environment removed and the stage's set (its topics, groups,
// Redis prefix; then extra, which may also set other variables such as
// SSL_CERT_FILE), and waits for /readyz to answer 200.
func startWebhookd(ctx context.Context, bin, logDir string, st *stage, extra map[string]string) (*webhookd, error) {
	opsAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	vars := map[string]string{
		"WEBHOOKD_KAFKA_BROKERS":    strings.Join(st.kafka.Brokers, ","),
		"WEBHOOKD_KAFKA_TOPICS":     st.Topic,
		"WEBHOOKD_KAFKA_GROUP_ID":   st.Group,
		"WEBHOOKD_KAFKA_PARTITIONS": strconv.Itoa(partitions),
		"WEBHOOKD_REDIS_ADDR":       st.redis.Addr,
		"WEBHOOKD_REDIS_KEY_PREFIX": st.Prefix,
		"WEBHOOKD_OPS_ADDR":         opsAddr,
		"WEBHOOKD_LOG_LEVEL":        "warn",
		// The receivers listen on loopback, which the egress guard blocks.
		"WEBHOOKD_DELIVERY_ALLOWED_CIDRS": "127.0.0.0/8",
	}
	if hasOption("ops.pprof") {
		vars["WEBHOOKD_OPS_PPROF"] = "true"
	}
	if hasOption("subscriptions.encryption_key") {
		// As production should run (and without the warning it logs otherwise).
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		vars["WEBHOOKD_SUBSCRIPTIONS_ENCRYPTION_KEY"] = base64.StdEncoding.EncodeToString(key)
	}
	for k, v := range st.env() {
		vars[k] = v
	}
	for k, v := range extra {
		vars[k] = v
	}
	env := make([]string, 0, len(os.Environ())+len(vars))
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if _, set := vars[name]; !strings.HasPrefix(kv, config.EnvPrefix+"_") && !set {
			env = append(env, kv)
		}
	}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	w := &webhookd{OpsAddr: opsAddr, logPath: filepath.Join(logDir, st.Name+".stderr.log"),
		exited: make(chan struct{}), stop: make(chan struct{})}
	if w.logFile, err = os.Create(w.logPath); err != nil {
		return nil, err
	}
	w.cmd = exec.Command(bin)
	w.cmd.Env = env
	w.cmd.Stdout, w.cmd.Stderr = w.logFile, w.logFile
	// If the bench dies, webhookd goes with it.
	w.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	w.started = time.Now()
	if err := w.cmd.Start(); err != nil {
		_ = w.logFile.Close()
		return nil, fmt.Errorf("start webhookd: %w", err)
	}
	go func() { w.waitErr = w.cmd.Wait(); close(w.exited) }()
	w.sampled.Add(1)
	go w.sample()
	if err := w.waitReady(ctx, 90*time.Second); err != nil {
		w.terminate()
		return nil, err
	}
	w.stats.StartToReady = time.Since(w.started).Seconds()
	return w, nil
}

// hasOption reports whether this webhookd knows a config key: keys are
// being added, and an old binary must not be handed one it lacks.
func hasOption(key string) bool {
	for _, o := range config.Options {
		if o.Key == key {
			return true
		}
	}
	return false
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().String(), nil
}

func (w *webhookd) waitReady(ctx context.Context, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := client.Get("http://" + w.OpsAddr + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-w.exited:
			return fmt.Errorf("webhookd exited before ready (%v); its log:\n%s", w.waitErr, w.tail(20))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("webhookd not ready after %s; its log:\n%s", timeout, w.tail(20))
		}
	}
}

// alive returns an error once the process has exited.
func (w *webhookd) alive() error {
	select {
	case <-w.exited:
		return fmt.Errorf("webhookd exited (%v); its log:\n%s", w.waitErr, w.tail(20))
	default:
		return nil
	}
}

// sample reads VmRSS every 100 ms until the process exits or stopSampling.
func (w *webhookd) sample() {
	defer w.sampled.Done()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		if rss, _, err := readStatus(w.cmd.Process.Pid); err == nil {
			w.mu.Lock()
			w.peakRSS = max(w.peakRSS, rss)
			w.samples++
			w.mu.Unlock()
		}
		select {
		case <-w.exited:
			return
		case <-w.stop:
			return
		case <-t.C:
		}
	}
}

// snapshot records CPU time and VmHWM now, when the measured work is done
// and before shutdown, and stops the RSS sampler.
func (w *webhookd) snapshot() {
	pid := w.cmd.Process.Pid
	if _, hwm, err := readStatus(pid); err == nil {
		w.stats.HWMMB = float64(hwm) / 1024
	}
	if cpu, err := readCPU(pid); err == nil {
		w.stats.CPUSeconds = cpu
	}
	close(w.stop)
	w.sampled.Wait()
	w.mu.Lock()
	w.stats.PeakRSSMB = float64(w.peakRSS) / 1024
	w.stats.Samples = w.samples
	w.mu.Unlock()
}

// terminate sends SIGTERM, waits for the graceful shutdown (webhookd's
// shutdown_timeout is 25 s), SIGKILLs after 40 s, and summarises the log.
func (w *webhookd) terminate() procStats {
	select {
	case <-w.stop:
	default:
		w.snapshot()
	}
	t := time.Now()
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.exited:
	case <-time.After(40 * time.Second):
		_ = w.cmd.Process.Kill()
		<-w.exited
	}
	w.stats.ShutdownS = time.Since(t).Seconds()
	w.stats.ExitCode = w.cmd.ProcessState.ExitCode()
	_ = w.logFile.Close()
	w.stats.StderrLog = w.logPath
	w.stats.StderrLines, w.stats.StderrSummary = summariseLog(w.logPath)
	return w.stats
}

func (w *webhookd) tail(n int) string {
	b, _ := os.ReadFile(w.logPath)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// readStatus returns VmRSS and VmHWM in kB.
func readStatus(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for line := range bytes.Lines(b) {
		f := strings.Fields(string(line))
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "VmRSS:":
			rss, _ = strconv.ParseInt(f[1], 10, 64)
		case "VmHWM:":
			hwm, _ = strconv.ParseInt(f[1], 10, 64)
		}
	}
	return rss, hwm, nil
}

var clockTicks = func() float64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if n, perr := strconv.Atoi(strings.TrimSpace(string(out))); err == nil && perr == nil && n > 0 {
		return float64(n)
	}
	return 100
}()

// readCPU returns utime+stime in seconds from /proc/<pid>/stat.
func readCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which ends at the last ')': state is
	// field 3, utime 14 and stime 15.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0, errors.New("short /proc/pid/stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return float64(ut+st) / clockTicks, nil
}

// summariseLog counts the log's lines and groups them by level and message,
// most frequent first, with one example of each.
func summariseLog(path string) (int, []string) {
	f, err := os.Open(path)
	if err != nil {
		return 0, nil
	}
	defer func() { _ = f.Close() }()
	type group struct {
		n       int
		example string
	}
	groups := map[string]*group{}
	lines := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines++
		var l struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
			Error string `json:"error"`
		}
		key := "unparsed: " + truncate(sc.Text(), 120)
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg != "" {
			key = l.Level + ": " + l.Msg
		}
		g := groups[key]
		if g == nil {
			g = &group{example: truncate(l.Error, 160)}
			groups[key] = g
		}
		g.n++
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return groups[keys[i]].n > groups[keys[j]].n })
	var out []string
	for _, k := range keys[:min(len(keys), 6)] {
		s := fmt.Sprintf("%d× %s", groups[k].n, k)
		if groups[k].example != "" {
			s += " (e.g. error: " + groups[k].example + ")"
		}
		out = append(out, s)
	}
	return lines, out
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
