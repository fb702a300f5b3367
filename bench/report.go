package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// metric is one row of the results table.
type metric struct {
	Name   string  `json:"metric"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit,omitempty"`
	Shown  string  `json:"shown"`
	Target string  `json:"target,omitempty"`
	Pass   *bool   `json:"pass,omitempty"`
}

// scenarioResult is everything one scenario measured.
type scenarioResult struct {
	Name     string     `json:"scenario"`
	Metrics  []metric   `json:"metrics"`
	Webhookd *procStats `json:"webhookd,omitempty"`
	Notes    []string   `json:"notes,omitempty"`
	// PerSecond counts the deliveries of each whole second from the first.
	PerSecond []int64 `json:"deliveries_per_second,omitempty"`
	Error     string  `json:"error,omitempty"`
	Seconds   float64 `json:"seconds"`
}

func (r *scenarioResult) add(name string, v float64, unit, format string) *metric {
	r.Metrics = append(r.Metrics, metric{Name: name, Value: v, Unit: unit, Shown: fmt.Sprintf(format, v)})
	return &r.Metrics[len(r.Metrics)-1]
}

// series keeps the per-second deliveries and notes them: all of them when
// few, else the slowest and fastest seconds, so a stall is visible.
func (r *scenarioResult) series(perSecond []int64) {
	r.PerSecond = perSecond
	if len(perSecond) == 0 {
		return
	}
	if len(perSecond) <= 45 {
		parts := make([]string, len(perSecond))
		for i, v := range perSecond {
			parts[i] = fmt.Sprint(v)
		}
		r.note("deliveries in each second from the first: %s", strings.Join(parts, " "))
		return
	}
	lo, hi := 0, 0
	for i, v := range perSecond {
		if v < perSecond[lo] {
			lo = i
		}
		if v > perSecond[hi] {
			hi = i
		}
	}
	r.note("deliveries per second over %d whole seconds: slowest %d (second %d), fastest %d (second %d); all in the JSON",
		len(perSecond), perSecond[lo], lo+1, perSecond[hi], hi+1)
}

// metric returns the row called name, nil when there is none.
func (r *scenarioResult) metric(name string) *metric {
	for i := range r.Metrics {
		if r.Metrics[i].Name == name {
			return &r.Metrics[i]
		}
	}
	return nil
}

func (r *scenarioResult) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

func (m *metric) atLeast(target float64, shown string) *metric {
	pass := m.Value >= target
	m.Target, m.Pass = "≥ "+shown, &pass
	return m
}

func (m *metric) atMost(target float64, shown string) *metric {
	pass := m.Value <= target
	m.Target, m.Pass = "≤ "+shown, &pass
	return m
}

// check records a correctness condition as a pass/fail row.
func (r *scenarioResult) check(name string, ok bool, shown, target string) {
	v := 0.0
	if ok {
		v = 1
	}
	r.Metrics = append(r.Metrics, metric{Name: name, Value: v, Shown: shown, Target: target, Pass: &ok})
}

// addProc adds the process rows every scenario reports.
func (r *scenarioResult) addProc(s procStats, deliveries int64) {
	r.Webhookd = &s
	r.add("webhookd CPU", s.CPUSeconds, "s", "%.1f s")
	if deliveries > 0 {
		r.add("webhookd CPU per 10k deliveries", s.CPUSeconds/float64(deliveries)*10_000, "s", "%.3f s")
	}
	r.add("webhookd peak RSS (100 ms samples)", s.PeakRSSMB, "MB", "%.1f MB")
	r.add("webhookd VmHWM", s.HWMMB, "MB", "%.1f MB")
	if s.StderrLines > 0 {
		r.note("webhookd logged %d lines at warn+ (%s): %s", s.StderrLines, s.StderrLog, strings.Join(s.StderrSummary, "; "))
	}
	if s.ExitCode != 0 {
		r.note("webhookd exited %d after SIGTERM (%.1f s)", s.ExitCode, s.ShutdownS)
	}
}

// machine describes where the numbers were taken.
type machine struct {
	CPU       string `json:"cpu"`
	Cores     int    `json:"cores"`
	MemoryGB  string `json:"memory"`
	Kernel    string `json:"kernel"`
	Go        string `json:"go"`
	Kafka     string `json:"kafka"`
	Redis     string `json:"redis"`
	GitCommit string `json:"git_commit"`
}

func describeMachine(svc *services, root string) machine {
	m := machine{CPU: "unknown", Cores: runtime.NumCPU(), Go: runtime.Version(),
		Kafka: svc.KafkaKind + " at " + strings.Join(svc.Brokers, ","),
		Redis: svc.RedisKind + " at " + svc.RedisAddr}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil {
			m.MemoryGB = fmt.Sprintf("%.1f GB", float64(kb)/(1<<20))
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	rev, _ := exec.Command("git", "-C", root, "rev-parse", "--short", "HEAD").Output()
	dirty, _ := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output()
	m.GitCommit = strings.TrimSpace(string(rev))
	if len(bytes.TrimSpace(dirty)) > 0 {
		m.GitCommit += " + uncommitted changes"
	}
	return m
}

// report is the whole run, as saved to JSON.
type report struct {
	Started   time.Time         `json:"started"`
	Seconds   float64           `json:"seconds"`
	Flags     map[string]string `json:"flags"`
	Machine   machine           `json:"machine"`
	Scenarios []*scenarioResult `json:"scenarios"`
}

func (rep *report) markdown() string {
	var b strings.Builder
	m := rep.Machine
	fmt.Fprintf(&b, "# webhookd bench, %s\n\n", rep.Started.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "- machine: %s, %d cores, %s RAM, Linux %s, %s\n", m.CPU, m.Cores, m.MemoryGB, m.Kernel, m.Go)
	fmt.Fprintf(&b, "- Kafka: %s\n- Redis: %s\n- webhookd: built from %s\n", m.Kafka, m.Redis, m.GitCommit)
	fmt.Fprintf(&b, "- flags: %s; took %s\n\n", formatFlags(rep.Flags), (time.Duration(rep.Seconds) * time.Second).String())
	b.WriteString("| scenario | metric | value | target | pass/fail |\n|---|---|---|---|---|\n")
	for _, s := range rep.Scenarios {
		if s.Error != "" {
			fmt.Fprintf(&b, "| %s | error | %s | | **FAIL** |\n", s.Name, oneLine(s.Error))
		}
		for _, x := range s.Metrics {
			verdict := ""
			if x.Pass != nil {
				verdict = "pass"
				if !*x.Pass {
					verdict = "**FAIL**"
				}
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", s.Name, x.Name, x.Shown, x.Target, verdict)
		}
	}
	for _, s := range rep.Scenarios {
		if len(s.Notes) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n**%s** (%.0f s)\n", s.Name, s.Seconds)
		for _, n := range s.Notes {
			fmt.Fprintf(&b, "- %s\n", oneLine(n))
		}
	}
	return b.String()
}

func formatFlags(f map[string]string) string {
	s := fmt.Sprintf("-scenarios %s -scale %s -profile=%s", f["scenarios"], f["scale"], f["profile"])
	if f["drain-only"] == "true" {
		s += " -drain-only"
	}
	if f["webhookd"] != "" {
		s += " -webhookd " + f["webhookd"]
	}
	return s
}

func oneLine(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\n", " ⏎ "), "|", "\\|")
}

// save writes <UTC timestamp>.json, latest.json and latest.md into dir.
func (rep *report) save(dir string) error {
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	stamp := rep.Started.UTC().Format("20060102T150405Z")
	for name, data := range map[string][]byte{
		stamp + ".json": js,
		"latest.json":   js,
		"latest.md":     []byte(rep.markdown()),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
