package docs

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/unibo/webhookd/config"
	"github.com/unibo/webhookd/event"
	"github.com/unibo/webhookd/internal/testenv"
)

// The marker convention: an HTML comment, invisible on GitHub, on the line
// before a fenced block.
//
//	<!-- test: run -->      a sh block run as written (see TestRunnableBlocks)
//	<!-- test: payload -->  a json block: a body webhookd delivers for one of the guide's examples
//	<!-- test: verifier --> a partner's endpoint, run by delivery/verify_snippets_test.go
var markerLine = regexp.MustCompile(`^<!-- test: ([a-z]+) -->$`)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.RemoveBinary()
	os.Exit(code)
}

type block struct {
	file   string
	line   int // of the opening fence
	lang   string
	marker string
	code   string
}

func (b block) String() string { return fmt.Sprintf("%s:%d", b.file, b.line) }

// pages are README.md and every docs/*.md, as paths from this directory.
func pages(t *testing.T) []string {
	t.Helper()
	docs, err := filepath.Glob("*.md")
	if err != nil || len(docs) == 0 {
		t.Fatalf("no docs/*.md: %v", err)
	}
	return append([]string{filepath.Join("..", "README.md")}, docs...)
}

func read(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// blocks returns the fenced blocks of a Markdown file with their markers.
func blocks(t *testing.T, file string) []block {
	t.Helper()
	var out []block
	lines := strings.Split(read(t, file), "\n")
	for i := 0; i < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "```") {
			continue
		}
		b := block{file: file, line: i + 1, lang: strings.TrimPrefix(lines[i], "```")}
		if i > 0 {
			if m := markerLine.FindStringSubmatch(strings.TrimSpace(lines[i-1])); m != nil {
				b.marker = m[1]
			}
		}
		var code []string
		for i++; i < len(lines) && !strings.HasPrefix(lines[i], "```"); i++ {
			code = append(code, lines[i])
		}
		b.code = strings.Join(code, "\n") + "\n"
		out = append(out, b)
	}
	return out
}

// runChecks are what a page's runnable block must leave behind, beyond
// exiting 0 without an UNEXPECTED answer: what its reader is told to see.
var runChecks = map[string]func(t *testing.T, dir, out string){
	"README.md": func(t *testing.T, dir, out string) {
		received := read(t, filepath.Join(dir, "received.log"))
		// Every event of events.txt arrives, its body byte for byte what
		// webhookd renders (tenant_id stays inside) on a line of its own.
		for _, line := range strings.Split(strings.TrimSpace(read(t, filepath.Join(dir, "events.txt"))), "\n") {
			_, value, _ := strings.Cut(line, "|")
			ev, err := event.Decode([]byte(value))
			if err != nil {
				t.Fatalf("events.txt: %v", err)
			}
			if !strings.Contains(received, "\n"+string(ev.Body)+"\n") {
				t.Errorf("received.log lacks %s:\n%s", ev.Body, received)
			}
		}
		for _, want := range []string{"Authorization: Bearer s3cret", "User-Agent: Unibo-Webhooks/1.0", "Webhook-Id: msg_",
			`→ 401 {"error":"Unauthorized"}`} {
			if !strings.Contains(received, want) {
				t.Errorf("received.log lacks %q:\n%s", want, received)
			}
		}
		if strings.Contains(received, "tenant_id") {
			t.Errorf("a partner received tenant_id:\n%s", received)
		}
		// dlq list shows the 401, and subscriptions test passed every case.
		if !regexp.MustCompile(`acme-no-key\s+PRIZE_PAYOUT_SUCCEEDED\s+\S+\s+1\s+401\s+not_retried`).MatchString(out) {
			t.Errorf("dlq list does not show acme-no-key's 401:\n%s", out)
		}
		if n, want := strings.Count(out, " ok "), len(event.Examples)+4; n < want {
			t.Errorf("subscriptions test: %d ok, want %d:\n%s", n, want, out)
		}
	},
	"partner-guide.md": func(t *testing.T, dir, out string) {
		if n, want := strings.Count(out, " ok "), 4+len(event.Examples); n != want {
			t.Errorf("the self-test printed %d ok, want %d:\n%s", n, want, out)
		}
		if got := read(t, filepath.Join(dir, "requests.log")); !strings.Contains(got, `→ 400 {"error":"Invalid JSON"}`) {
			t.Errorf("requests.log:\n%s", got)
		}
	},
}

// The blocks marked "run" are run as written, with bash -e, in a directory
// of their own, with a freshly built webhookd first on PATH, on the suite's
// Kafka and Redis (the real ones when WEBHOOKD_TEST_* are set). So that they
// can share a broker and a Redis with other tests, the deployment's names
// are the test's own: the WEBHOOKD_* environment names topics, groups and a
// Redis key prefix of the test, and four literals of the text are replaced
// by the test's values: the topic prize-payouts, the broker 127.0.0.1:9092,
// the receiver's 127.0.0.1:9000 and the ops port 127.0.0.1:8081.
// WEBHOOKD_DELIVERY_ALLOWED_CIDRS is not set: the block must set it.
func TestRunnableBlocks(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	n := 0
	for _, file := range pages(t) {
		for _, b := range blocks(t, file) {
			if b.marker != "run" {
				continue
			}
			n++
			t.Run(filepath.Base(file), func(t *testing.T) { runBlock(t, b) })
		}
	}
	if n < 2 {
		t.Fatalf("%d blocks marked <!-- test: run -->; the README walk-through and the partner guide's self-test should be", n)
	}
}

func runBlock(t *testing.T, b block) {
	if b.lang != "sh" {
		t.Fatalf("%s: a runnable block must be sh, not %q", b, b.lang)
	}
	for _, tool := range []string{"bash", "curl", "kcat"} {
		if tool == "kcat" && !strings.Contains(b.code, "kcat ") {
			continue
		}
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("SKIPPING %s: %s is not installed (apt-get install %s)", b, tool, tool)
		}
	}
	bin := testenv.Binary(t)
	env := testenv.Start(t)
	t.Logf("%s on %s", b, env.Backends())
	cfg := env.Config(t)
	opsAddr, receiverAddr := freeAddr(t), freeAddr(t)
	cfg.Ops.Addr = opsAddr
	cfg.Delivery.AllowedCIDRs = nil
	script := strings.NewReplacer(
		"prize-payouts", cfg.Kafka.Topics[0],
		"127.0.0.1:9092", strings.Join(env.Brokers, ","),
		"127.0.0.1:9000", receiverAddr,
		"127.0.0.1:8081", opsAddr,
	).Replace(b.code)
	t.Cleanup(func() { cleanRedis(t, env, cfg) })

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "block.sh"), []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-e", "-o", "pipefail", "block.sh")
	cmd.Dir = dir
	cmd.Env = append(testenv.BinaryEnv(t, cfg), "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// Its own process group: whatever the block leaves running in the
	// background is stopped with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	err := cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	if err != nil {
		var logs strings.Builder
		for _, f := range []string{"worker.log", "received.log", "requests.log"} {
			if s, rerr := os.ReadFile(filepath.Join(dir, f)); rerr == nil {
				fmt.Fprintf(&logs, "\n--- %s:\n%s", f, testenv.Tail(string(s), 40))
			}
		}
		t.Fatalf("%s failed (%v; %v):\n%s%s", b, err, ctx.Err(), out.String(), logs.String())
	}
	if strings.Contains(out.String(), "UNEXPECTED") {
		t.Errorf("%s: an answer was not what the guide asks for:\n%s", b, out.String())
	}
	if check := runChecks[filepath.Base(b.file)]; check != nil {
		check(t, dir, out.String())
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().String()
}

// cleanRedis removes the keys a block wrote under the test's prefix.
func cleanRedis(t *testing.T, env testenv.Env, cfg config.Config) {
	c := env.Redis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	keys, err := c.Keys(ctx, cfg.Redis.KeyPrefix+"*").Result()
	if err == nil && len(keys) > 0 {
		_ = c.Del(ctx, keys...).Err()
	}
}

// The partner guide's payloads are what webhookd delivers for the guide's
// examples, byte for byte once the indentation is taken out.
func TestPartnerGuidePayloadsAreWhatWebhookdSends(t *testing.T) {
	rendered := map[string]string{}
	for _, ex := range event.Examples {
		ev, err := event.Decode([]byte(ex.Domain))
		if err != nil {
			t.Fatalf("%s: %v", ex.Name, err)
		}
		rendered[string(ev.Body)] = ex.Name
	}
	seen := map[string]bool{}
	types := map[string]bool{}
	for _, b := range blocks(t, "partner-guide.md") {
		if b.marker != "payload" {
			continue
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, []byte(b.code)); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		name, ok := rendered[compact.String()]
		if !ok {
			t.Errorf("%s: webhookd sends no such payload for any of the guide's examples:\n%s", b, compact.String())
			continue
		}
		if seen[name] {
			t.Errorf("%s: %s shown twice", b, name)
		}
		seen[name] = true
		var p struct {
			EventType string `json:"event_type"`
		}
		_ = json.Unmarshal(compact.Bytes(), &p)
		types[p.EventType] = true
	}
	for _, ty := range event.Types {
		if !types[string(ty)] {
			t.Errorf("the partner guide shows no %s payload", ty)
		}
	}
}

// Every webhookd command line in a sh block of the pages names commands and
// flags the binary has.
func TestDocumentedCommandsExist(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := testenv.Binary(t)
	helps := map[string]string{}
	help := func(path []string) string {
		key := strings.Join(path, " ")
		if h, ok := helps[key]; ok {
			return h
		}
		out, err := exec.Command(bin, append(path, "--help")...).CombinedOutput()
		if err != nil {
			t.Fatalf("webhookd %s --help: %v\n%s", key, err, out)
		}
		helps[key] = string(out)
		return helps[key]
	}
	checked := 0
	for _, file := range pages(t) {
		for _, b := range blocks(t, file) {
			if b.lang != "sh" {
				continue
			}
			for _, cmdLine := range commandLines(b.code) {
				path, flags := parseCommand(cmdLine, func(path []string, word string) bool {
					return regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(word) + `\s`).MatchString(subcommands(help(path)))
				})
				h := help(path)
				for _, f := range flags {
					if !regexp.MustCompile(`(?m)^\s+(-\w, )?` + regexp.QuoteMeta(f) + `\b`).MatchString(h) {
						t.Errorf("%s: `webhookd %s` has no flag %s (line: %s)", b, strings.Join(path, " "), f, cmdLine)
					}
				}
				checked++
			}
		}
	}
	if checked < 20 {
		t.Fatalf("only %d webhookd command lines found", checked)
	}
}

// subcommands is the "Available Commands" part of a help text.
func subcommands(help string) string {
	_, rest, ok := strings.Cut(help, "Available Commands:\n")
	if !ok {
		return ""
	}
	part, _, _ := strings.Cut(rest, "\n\n")
	return part + "\n"
}

// commandLines returns the webhookd invocations of a sh block, one logical
// line each: continuations (a trailing backslash, or an indented line of
// optional flags) joined, comments dropped.
func commandLines(code string) []string {
	var out []string
	for _, line := range strings.Split(code, "\n") {
		trimmed := strings.TrimSpace(line)
		if len(out) > 0 && (strings.HasSuffix(out[len(out)-1], `\`) ||
			(line != trimmed && (strings.HasPrefix(trimmed, "[") || strings.HasPrefix(trimmed, "--")))) {
			out[len(out)-1] = strings.TrimSuffix(out[len(out)-1], `\`) + " " + stripComment(trimmed)
			continue
		}
		if c := stripComment(trimmed); strings.HasPrefix(c, "webhookd ") || c == "webhookd" {
			out = append(out, c)
		} else if len(out) > 0 && strings.HasSuffix(out[len(out)-1], `\`) {
			out[len(out)-1] += " " + c
		}
	}
	return out
}

func stripComment(s string) string {
	if i := strings.Index(s, " #"); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

// parseCommand splits "webhookd subscriptions add --tenant T [--api-key K]"
// into its command path and the long flags it names, up to the first shell
// operator.
func parseCommand(line string, isSubcommand func(path []string, word string) bool) (path, flags []string) {
	words := strings.Fields(line)[1:]
	i := 0
	for ; i < len(words) && isSubcommand(path, words[i]); i++ {
		path = append(path, words[i])
	}
	for _, w := range words[i:] {
		if w == "&&" || w == ";" || w == "&" || w == "||" || strings.HasPrefix(w, ">") || strings.HasPrefix(w, "<") {
			break
		}
		w = strings.Trim(w, "[]|")
		if f, ok := strings.CutPrefix(w, "--"); ok && f != "" {
			f, _, _ = strings.Cut(f, "=")
			flags = append(flags, "--"+f)
		}
	}
	return path, flags
}

// Every relative link of the pages reaches a file, and every #anchor a
// heading of its page.
func TestLinksResolve(t *testing.T) {
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	for _, file := range pages(t) {
		for _, m := range link.FindAllStringSubmatch(read(t, file), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, anchor, _ := strings.Cut(target, "#")
			resolved := file
			if path != "" {
				resolved = filepath.Join(filepath.Dir(file), path)
				if _, err := os.Stat(resolved); err != nil {
					t.Errorf("%s: link %s: %v", file, target, err)
					continue
				}
			}
			if anchor != "" && !headingSlugs(t, resolved)[anchor] {
				t.Errorf("%s: link %s: no heading #%s in %s", file, target, anchor, resolved)
			}
		}
	}
}

// headingSlugs are the anchors GitHub gives a page's headings.
func headingSlugs(t *testing.T, file string) map[string]bool {
	t.Helper()
	slugs := map[string]bool{}
	drop := regexp.MustCompile(`[^\p{L}\p{N} _-]`)
	inFence := false
	for _, line := range strings.Split(read(t, file), "\n") {
		if strings.HasPrefix(line, "```") {
			inFence = !inFence
		}
		if inFence || !strings.HasPrefix(line, "#") {
			continue
		}
		title := strings.TrimSpace(strings.TrimLeft(line, "#"))
		slugs[strings.ReplaceAll(drop.ReplaceAllString(strings.ToLower(title), ""), " ", "-")] = true
	}
	return slugs
}

// The image runs as a numeric user: Kubernetes can check runAsNonRoot
// against 65532, not against "nonroot", when the pod sets no runAsUser.
func TestDockerfileRunsAsANumericUser(t *testing.T) {
	var user string
	for _, line := range strings.Split(read(t, filepath.Join("..", "Dockerfile")), "\n") {
		if u, ok := strings.CutPrefix(strings.TrimSpace(line), "USER "); ok {
			user = strings.TrimSpace(u)
		}
	}
	if !regexp.MustCompile(`^[1-9][0-9]*(:[0-9]+)?$`).MatchString(user) {
		t.Fatalf("the image's USER is %q: want a numeric non-root uid (and gid), such as 65532:65532", user)
	}
}
