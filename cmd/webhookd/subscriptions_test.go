package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/unibo/webhookd/event"
	"github.com/unibo/webhookd/subscriptions"
)

const subsTestKey = "sk_live_0123456789abcdef"

// subsRedis is the Redis a CLI test's commands write to: the real one at
// WEBHOOKD_TEST_REDIS_ADDR under a key prefix of the test's own when that is
// set (CI), a fresh miniredis otherwise.
type subsRedis struct {
	rdb    redis.UniversalClient
	prefix string
}

// subsEnv points the CLI at an empty table and returns its Redis and a
// store on it.
func subsEnv(t *testing.T) (*subsRedis, *subscriptions.Store) {
	t.Helper()
	r := &subsRedis{prefix: "webhookd:"}
	addr := os.Getenv("WEBHOOKD_TEST_REDIS_ADDR")
	if addr != "" {
		r.prefix = fmt.Sprintf("webhookd-test:%s:%s:", t.Name(), subscriptions.NewID())
	} else {
		addr = miniredis.RunT(t).Addr()
	}
	t.Setenv("WEBHOOKD_REDIS_ADDR", addr)
	t.Setenv("WEBHOOKD_REDIS_KEY_PREFIX", r.prefix)
	r.rdb = redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() {
		r.flush(t)
		_ = r.rdb.Close()
	})
	return r, subscriptions.NewStore(r.rdb, r.prefix)
}

// keys lists the keys under the test's prefix.
func (r *subsRedis) keys(t *testing.T) []string {
	t.Helper()
	keys, err := r.rdb.Keys(context.Background(), r.prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// flush deletes every key under the test's prefix, as a lost Redis would.
func (r *subsRedis) flush(t *testing.T) {
	t.Helper()
	if keys := r.keys(t); len(keys) > 0 {
		if err := r.rdb.Del(context.Background(), keys...).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// get reads the key named by the part after the prefix ("" when missing).
func (r *subsRedis) get(t *testing.T, key string) string {
	t.Helper()
	v, err := r.rdb.Get(context.Background(), r.prefix+key).Result()
	if err != nil && err != redis.Nil {
		t.Fatal(err)
	}
	return v
}

// runSubs runs `webhookd subscriptions args...` with stdin.
func runSubs(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRootCmd(&out, &errOut)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(append([]string{"subscriptions"}, args...))
	err = root.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

func mustRunSubs(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := runSubs(t, "", args...)
	if err != nil {
		t.Fatalf("subscriptions %s: %v (stderr %q)", strings.Join(args, " "), err, errOut)
	}
	return out
}

var cliIDPattern = regexp.MustCompile(`^sub_[0-9a-v]{20}\n$`)

func TestSubsAddPrintsOnlyTheID(t *testing.T) {
	_, store := subsEnv(t)
	out, errOut, err := runSubs(t, "", "add", "--tenant", "acme", "--url", "https://hooks.acme.example/p",
		"--events", "PRIZE_PAYOUT_SUCCEEDED, PRIZE_PAYOUT_FAILED", "--api-key", subsTestKey, "--campaigns", "summer,winter")
	if err != nil {
		t.Fatalf("add: %v", err)
	}
	if !cliIDPattern.MatchString(out) || errOut != "" {
		t.Fatalf("add printed stdout %q stderr %q, want just an id and a newline", out, errOut)
	}
	got, err := store.Get(context.Background(), strings.TrimSpace(out))
	if err != nil {
		t.Fatal(err)
	}
	want := subscriptions.Subscription{
		ID: strings.TrimSpace(out), TenantID: "acme", URL: "https://hooks.acme.example/p",
		EventTypes: []event.Type{event.PrizePayoutSucceeded, event.PrizePayoutFailed},
		APIKey:     subsTestKey, CampaignIDs: []string{"summer", "winter"}, Enabled: true,
		CreatedAt: got.CreatedAt, UpdatedAt: got.UpdatedAt,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("stored %+v\nwant   %+v", got, want)
	}

	out = mustRunSubs(t, "add", "--id", "partner-b", "--disabled", "--tenant", "acme", "--url", "http://b.example/", "--events", "PLAYER_OPTED_IN")
	if out != "partner-b\n" {
		t.Errorf("add --id printed %q, want partner-b", out)
	}
	if b, _ := store.Get(context.Background(), "partner-b"); b.Enabled {
		t.Error("add --disabled stored an enabled subscription")
	}
	_, _, err = runSubs(t, "", "add", "--id", "partner-b", "--tenant", "acme", "--url", "http://b.example/", "--events", "PLAYER_OPTED_IN")
	if want := `add subscription "partner-b": subscription already exists (change it with: webhookd subscriptions update partner-b ..., or delete it first)`; err == nil || err.Error() != want {
		t.Errorf("add of a taken id = %v\nwant %s", err, want)
	}
}

func TestSubsAddRejectsBadInput(t *testing.T) {
	good := map[string]string{"--tenant": "acme", "--url": "https://a.example/", "--events": "PLAYER_OPTED_IN"}
	tests := []struct {
		name      string
		flag, val string
		want      []string
	}{
		{"relative url", "--url", "a.example/hook", []string{`field "url"`, "absolute http or https URL", "--url"}},
		{"ftp url", "--url", "ftp://a.example/", []string{`field "url"`}},
		{"unknown event", "--events", "PLAYER_OPTED_IN,PRIZE_WON", []string{`field "event_types"`, `"PRIZE_WON"`, "--events"}},
		{"no events", "--events", "", []string{`field "event_types"`}},
		{"empty tenant", "--tenant", "", []string{`field "tenant_id"`, "--tenant"}},
		{"blank campaign", "--campaigns", "a,,b", []string{`field "campaign_ids"`}},
		{"cloud metadata", "--url", "http://169.254.169.254/latest/meta-data/", []string{`field "url"`, "link-local", "metadata", "--url"}},
		{"loopback", "--url", "http://127.0.0.1:6379/", []string{`field "url"`, "loopback"}},
		{"private", "--url", "https://10.0.0.5/hook", []string{`field "url"`, "RFC 1918"}},
		{"gopher", "--url", "gopher://a.example/", []string{`field "url"`, "http or https"}},
		{"bad secret", "--signing-secret", "s3cret-not-whsec", []string{`field "signing_secret"`, "whsec_", "--signing-secret"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mr, _ := subsEnv(t)
			args := []string{"add"}
			for f, v := range good {
				if f != tt.flag {
					args = append(args, f, v)
				}
			}
			args = append(args, tt.flag, tt.val)
			out, _, err := runSubs(t, "", args...)
			if err == nil {
				t.Fatalf("add succeeded with %s=%q, printed %q", tt.flag, tt.val, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if out != "" || len(mr.keys(t)) != 0 {
				t.Errorf("stdout %q, keys %v: bad input must write nothing", out, mr.keys(t))
			}
		})
	}
}

func TestSubsListMasksKeys(t *testing.T) {
	_, store := subsEnv(t)
	ctx := context.Background()
	a, _ := store.Add(ctx, subscriptions.Subscription{ID: "sub_a", TenantID: "acme", URL: "https://a.example/", EventTypes: []event.Type{event.PlayerOptedIn}, APIKey: subsTestKey, Enabled: true})
	g, _ := store.Add(ctx, subscriptions.Subscription{ID: "sub_g", TenantID: "globex", URL: "https://g.example/", EventTypes: []event.Type{event.PlayerOptedOut}, CampaignIDs: []string{"c1"}})

	table := mustRunSubs(t, "list")
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 3 || !regexp.MustCompile(`^ID\s+TENANT\s+ENABLED\s+EVENTS\s+CAMPAIGNS\s+URL\s+API_KEY$`).MatchString(lines[0]) {
		t.Fatalf("list table:\n%s", table)
	}
	if cols := strings.Fields(lines[1]); len(cols) != 7 || cols[0] != a.ID || cols[6] != "****cdef" {
		t.Errorf("row %q, want %s … ****cdef", lines[1], a.ID)
	}
	if cols := strings.Fields(lines[2]); len(cols) != 7 || cols[0] != g.ID || cols[2] != "false" || cols[4] != "c1" {
		t.Errorf("row %q, want %s disabled with campaign c1", lines[2], g.ID)
	}
	// Columns are aligned: every row's URL starts where the header's does.
	col := strings.Index(lines[0], "URL")
	for _, l := range lines[1:] {
		if !strings.HasPrefix(l[col:], "https://") {
			t.Errorf("misaligned row %q", l)
		}
	}

	for _, args := range [][]string{{"list"}, {"list", "-o", "json"}, {"list", "-o", "yaml"}, {"get", a.ID}, {"get", a.ID, "-o", "yaml"}} {
		out := mustRunSubs(t, args...)
		if strings.Contains(out, subsTestKey) || !strings.Contains(out, "****cdef") {
			t.Errorf("%v does not mask the API key:\n%s", args, out)
		}
	}

	var listed []subscriptions.Subscription
	if err := json.Unmarshal([]byte(mustRunSubs(t, "list", "-o", "json", "--tenant", "globex")), &listed); err != nil {
		t.Fatal(err)
	}
	if len(listed) != 1 || listed[0].ID != g.ID {
		t.Errorf("list --tenant globex = %+v", listed)
	}
	if out := mustRunSubs(t, "list", "-o", "json", "--tenant", "initech"); strings.TrimSpace(out) != "[]" {
		t.Errorf("empty json list = %q, want []", out)
	}
	if out := mustRunSubs(t, "list", "-o", "yaml", "--reveal-secrets"); !strings.Contains(out, subsTestKey) {
		t.Errorf("--reveal-secrets does not reveal:\n%s", out)
	}
}

// list prints subscriptions by id in every format, whatever their tenants
// and creation order, so that backups diff cleanly.
func TestSubsListIsSortedByID(t *testing.T) {
	subsEnv(t)
	for _, sub := range [][2]string{{"z-first", "acme"}, {"m-second", "globex"}, {"a-third", "initech"}} {
		mustRunSubs(t, "add", "--id", sub[0], "--tenant", sub[1], "--url", "https://hooks."+sub[1]+".example/", "--events", "PLAYER_OPTED_IN")
	}
	order := regexp.MustCompile(`a-third|m-second|z-first`)
	for _, format := range []string{"table", "json", "yaml"} {
		out := mustRunSubs(t, "list", "-o", format)
		if got := order.FindAllString(out, -1); !slices.Equal(got, []string{"a-third", "m-second", "z-first"}) {
			t.Errorf("list -o %s order %v, want by id:\n%s", format, got, out)
		}
	}
}

func TestSubsGetUnknownID(t *testing.T) {
	subsEnv(t)
	for _, args := range [][]string{
		{"get", "sub_nope"}, {"delete", "sub_nope"}, {"enable", "sub_nope"}, {"disable", "sub_nope"}, {"update", "sub_nope", "--url", "https://x.example/"},
	} {
		_, _, err := runSubs(t, "", args...)
		if err == nil || !strings.Contains(err.Error(), "sub_nope") || !strings.Contains(err.Error(), "not found") {
			t.Errorf("%v = %v, want a not-found error naming the id", args, err)
		}
	}
}

func TestSubsUpdateChangesOnlyGivenFlags(t *testing.T) {
	_, store := subsEnv(t)
	ctx := context.Background()
	orig, _ := store.Add(ctx, subscriptions.Subscription{
		TenantID: "acme", URL: "https://a.example/", EventTypes: []event.Type{event.PlayerOptedIn},
		APIKey: subsTestKey, CampaignIDs: []string{"c1"}, Enabled: true,
	})
	get := func() subscriptions.Subscription {
		s, err := store.Get(ctx, orig.ID)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	steps := []struct {
		args  []string
		apply func(*subscriptions.Subscription)
	}{
		{[]string{"--url", "https://new.example/h"}, func(s *subscriptions.Subscription) { s.URL = "https://new.example/h" }},
		{[]string{"--events", "PRIZE_PAYOUT_CREATED,PLAYER_OPTED_OUT"}, func(s *subscriptions.Subscription) {
			s.EventTypes = []event.Type{event.PrizePayoutCreated, event.PlayerOptedOut}
		}},
		{[]string{"--clear-api-key"}, func(s *subscriptions.Subscription) { s.APIKey = "" }},
		{[]string{"--api-key", "another-key-5678"}, func(s *subscriptions.Subscription) { s.APIKey = "another-key-5678" }},
		{[]string{"--campaigns", "c2,c3"}, func(s *subscriptions.Subscription) { s.CampaignIDs = []string{"c2", "c3"} }},
		{[]string{"--clear-campaigns"}, func(s *subscriptions.Subscription) { s.CampaignIDs = nil }},
		{[]string{"--tenant", "globex"}, func(s *subscriptions.Subscription) { s.TenantID = "globex" }},
	}
	want := orig
	for _, st := range steps {
		out, errOut, err := runSubs(t, "", append([]string{"update", orig.ID}, st.args...)...)
		if err != nil || out != "" || !strings.Contains(errOut, orig.ID) {
			t.Fatalf("update %v: err %v, stdout %q, stderr %q", st.args, err, out, errOut)
		}
		st.apply(&want)
		got := get()
		want.UpdatedAt = got.UpdatedAt
		if !reflect.DeepEqual(got, want) {
			t.Errorf("after update %v:\n got %+v\nwant %+v", st.args, got, want)
		}
	}

	before := get()
	for _, args := range [][]string{
		{"update", orig.ID},
		{"update", orig.ID, "--events", "NOPE"},
		{"update", orig.ID, "--url", "not a url"},
		{"update", orig.ID, "--tenant", ""},
		{"update", orig.ID, "--api-key", "k", "--clear-api-key"},
	} {
		if _, _, err := runSubs(t, "", args...); err == nil {
			t.Errorf("%v succeeded, want an error", args)
		}
	}
	if after := get(); !reflect.DeepEqual(after, before) {
		t.Errorf("failed updates changed the subscription:\n%+v\n%+v", after, before)
	}
}

func TestSubsEnableDisableDelete(t *testing.T) {
	_, store := subsEnv(t)
	ctx := context.Background()
	sub, _ := store.Add(ctx, subscriptions.Subscription{TenantID: "acme", URL: "https://a.example/", EventTypes: []event.Type{event.PlayerOptedIn}, Enabled: true})
	for _, step := range []struct {
		cmd     string
		enabled bool
	}{{"disable", false}, {"enable", true}} {
		out, errOut, err := runSubs(t, "", step.cmd, sub.ID)
		if err != nil || out != "" || !strings.Contains(errOut, sub.ID) {
			t.Fatalf("%s: err %v, stdout %q, stderr %q", step.cmd, err, out, errOut)
		}
		if got, _ := store.Get(ctx, sub.ID); got.Enabled != step.enabled {
			t.Errorf("after %s enabled = %v", step.cmd, got.Enabled)
		}
	}
	out, errOut, err := runSubs(t, "", "delete", sub.ID)
	if err != nil || out != "" || !strings.Contains(errOut, "deleted "+sub.ID) {
		t.Fatalf("delete: err %v, stdout %q, stderr %q", err, out, errOut)
	}
	if _, err := store.Get(ctx, sub.ID); err == nil {
		t.Error("subscription still there after delete")
	}
}

func TestSubsApplyRoundTrip(t *testing.T) {
	mr, _ := subsEnv(t)
	mustRunSubs(t, "add", "--tenant", "acme", "--url", "https://a.example/", "--events", "PLAYER_OPTED_IN", "--api-key", subsTestKey, "--campaigns", "c1")
	mustRunSubs(t, "add", "--id", "partner-b", "--tenant", "globex", "--url", "http://b.example:8080/h", "--events", "PRIZE_PAYOUT_FAILED", "--disabled")
	backup := mustRunSubs(t, "list", "-o", "yaml", "--reveal-secrets")

	// Redis is lost: rebuild it from the backup, through stdin.
	mr.flush(t)
	out, _, err := runSubs(t, backup, "apply", "-f", "-")
	if err != nil || out != "added 2, updated 0, deleted 0, unchanged 0\n" {
		t.Fatalf("apply backup: %q, %v", out, err)
	}
	if again := mustRunSubs(t, "list", "-o", "yaml", "--reveal-secrets"); again != backup {
		t.Errorf("rebuilt table differs:\n%s\nwant\n%s", again, backup)
	}

	// From a file, applied twice: idempotent.
	path := filepath.Join(t.TempDir(), "subs.yaml")
	if err := os.WriteFile(path, []byte(backup), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := mustRunSubs(t, "apply", "-f", path); out != "added 0, updated 0, deleted 0, unchanged 2\n" {
		t.Errorf("second apply = %q", out)
	}
}

func TestSubsApplyRejectsBadFilesAndWritesNothing(t *testing.T) {
	_, store := subsEnv(t)
	ctx := context.Background()
	existing, _ := store.Add(ctx, subscriptions.Subscription{TenantID: "acme", URL: "https://a.example/", EventTypes: []event.Type{event.PlayerOptedIn}, APIKey: subsTestKey, Enabled: true})
	masked := mustRunSubs(t, "list", "-o", "yaml")
	tests := []struct {
		name, file string
		want       []string
	}{
		{"masked export", masked, []string{`field "api_key"`, "masked"}},
		{"bad url", "subscriptions:\n  - {tenant_id: a, url: 'ftp://x/', event_types: [PLAYER_OPTED_IN]}\n", []string{`field "url"`, "line 2"}},
		{"unknown key", "subscriptions:\n  - {tenant: a, url: 'https://x/', event_types: [PLAYER_OPTED_IN]}\n", []string{`stdin: parse subscriptions file: line 2: unknown key "tenant"; did you mean tenant_id?`}},
		{"misspelt key", "subscriptions:\n  - tenant_id: a\n    url: https://a.example/\n    event_type: [PLAYER_OPTED_IN]\n", []string{`line 4: unknown key "event_type"; did you mean event_types?`}},
		{"empty", "", []string{"empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := runSubs(t, tt.file, "apply", "-f", "-")
			if err == nil {
				t.Fatalf("apply succeeded: %q", out)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if all, _ := store.List(ctx, ""); len(all) != 1 || all[0].APIKey != existing.APIKey {
				t.Errorf("table changed by a rejected apply: %+v", all)
			}
		})
	}
	if _, _, err := runSubs(t, "", "apply"); err == nil || !strings.Contains(err.Error(), "file") {
		t.Errorf("apply without -f = %v, want an error about the missing flag", err)
	}
}

// apply says what it is doing on stderr (the file's size, then each change
// once committed, an update with the fields it changes) and prints only the
// summary on stdout.
func TestSubsApplyShowsProgressAndSummary(t *testing.T) {
	_, store := subsEnv(t)
	ctx := context.Background()
	for _, id := range []string{"keep", "change", "drop"} {
		if _, err := store.Add(ctx, subscriptions.Subscription{ID: id, TenantID: "acme", URL: "https://" + id + ".example/", EventTypes: []event.Type{event.PlayerOptedIn}, Enabled: true}); err != nil {
			t.Fatal(err)
		}
	}
	file := "subscriptions:\n" +
		"  - {id: keep, tenant_id: acme, url: 'https://keep.example/', event_types: [PLAYER_OPTED_IN]}\n" +
		"  - {id: change, tenant_id: acme, url: 'https://changed.example/', event_types: [PLAYER_OPTED_IN]}\n" +
		"  - {id: new, tenant_id: acme, url: 'https://new.example/', event_types: [PLAYER_OPTED_IN]}\n"
	out, errOut, err := runSubs(t, file, "apply", "-f", "-", "--prune")
	if err != nil {
		t.Fatalf("apply: %v (stderr %q)", err, errOut)
	}
	if out != "added 1, updated 1, deleted 1, unchanged 1\n" {
		t.Errorf("stdout %q, want the summary alone", out)
	}
	want := "stdin: 3 subscriptions, applied in one transaction:\n  updated change: url\n  added new\n  deleted drop\n"
	if errOut != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", errOut, want)
	}
}

// The README's sample file applied to a table with other entries: without
// --prune apply deletes nothing, names what it would delete and fails;
// --dry-run prints the plan; --prune deletes.
func TestSubsApplyDeletesOnlyWithPrune(t *testing.T) {
	mr, store := subsEnv(t)
	ctx := context.Background()
	for _, id := range []string{"old-a", "old-b", "old-c"} {
		if _, err := store.Add(ctx, subscriptions.Subscription{ID: id, TenantID: "acme", URL: "https://" + id + ".example/", EventTypes: []event.Type{event.PlayerOptedIn}, Enabled: true}); err != nil {
			t.Fatal(err)
		}
	}
	sample := "subscriptions:\n  - id: sub_acme_prizes\n    tenant_id: acme\n    url: https://hooks.acme.example/prizes\n" +
		"    event_types: [PRIZE_PAYOUT_SUCCEEDED, PRIZE_PAYOUT_FAILED]\n    api_key: s3cret\n"
	path := filepath.Join(t.TempDir(), "subscriptions.yaml")
	if err := os.WriteFile(path, []byte(sample), 0o600); err != nil {
		t.Fatal(err)
	}
	version := func() string { return mr.get(t, "subscriptions:version") }
	before := version()

	out, _, err := runSubs(t, "", "apply", "-f", path)
	if err == nil {
		t.Fatalf("apply without --prune succeeded: %q", out)
	}
	for _, want := range []string{"refused", "would delete 3 subscriptions", "old-a, old-b, old-c", "nothing written", "--prune"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if all, _ := store.List(ctx, ""); len(all) != 3 || version() != before || out != "" {
		t.Fatalf("a refused apply wrote: %d entries, version %s (was %s), stdout %q", len(all), version(), before, out)
	}

	out, _, err = runSubs(t, "", "apply", "-f", path, "--dry-run")
	want := path + ": 1 subscription; plan:\n  add sub_acme_prizes\n  delete old-a\n  delete old-b\n  delete old-c\n" +
		"dry run, nothing written: with --prune, apply would have added 1, updated 0, deleted 3, unchanged 0\n"
	if out != want {
		t.Errorf("--dry-run printed\n%s\nwant\n%s", out, want)
	}
	if err == nil || !strings.Contains(err.Error(), "would be refused") {
		t.Errorf("--dry-run of a refused apply = %v, want it to fail as the apply does", err)
	}
	if all, _ := store.List(ctx, ""); len(all) != 3 || version() != before {
		t.Fatalf("--dry-run wrote: %d entries", len(all))
	}
	out = mustRunSubs(t, "apply", "-f", path, "--dry-run", "--prune")
	want = path + ": 1 subscription; plan:\n  add sub_acme_prizes\n  delete old-a\n  delete old-b\n  delete old-c\n" +
		"dry run, nothing written: would have added 1, updated 0, deleted 3, unchanged 0\n"
	if out != want {
		t.Errorf("--dry-run --prune printed\n%s\nwant\n%s", out, want)
	}

	if out := mustRunSubs(t, "apply", "-f", path, "--prune"); out != "added 1, updated 0, deleted 3, unchanged 0\n" {
		t.Errorf("apply --prune = %q", out)
	}
	if all, _ := store.List(ctx, ""); len(all) != 1 || all[0].ID != "sub_acme_prizes" {
		t.Errorf("after --prune: %+v", all)
	}
}

// The newcomer's case: a file that keeps one subscription and lacks one in
// Redis. Its dry run says what the apply does, refuse and write nothing, and
// exits 1 as the apply does, printing what --prune would delete; the apply
// refuses without claiming to apply anything first.
func TestSubsApplyDryRunOfARefusedApplyFailsLikeIt(t *testing.T) {
	_, store := subsEnv(t)
	ctx := context.Background()
	for _, id := range []string{"keep", "gone"} {
		if _, err := store.Add(ctx, subscriptions.Subscription{ID: id, TenantID: "acme", URL: "https://" + id + ".example/", EventTypes: []event.Type{event.PlayerOptedIn}, Enabled: true}); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "subs.yaml")
	_ = os.WriteFile(path, []byte("subscriptions:\n  - {id: keep, tenant_id: acme, url: 'https://keep.example/', event_types: [PLAYER_OPTED_IN]}\n"), 0o600)

	out, errOut, err := runSubs(t, "", "apply", "-f", path, "--dry-run")
	if want := path + ": 1 subscription; plan:\n  delete gone\n" +
		"dry run, nothing written: with --prune, apply would have added 0, updated 0, deleted 1, unchanged 1\n"; out != want {
		t.Errorf("--dry-run printed\n%s\nwant\n%s", out, want)
	}
	if want := path + ": dry run: without --prune apply would be refused and write nothing: it would delete 1 subscription absent from the file (gone). " +
		"Re-run with --prune to delete it, or add it to the file"; err == nil || err.Error() != want {
		t.Errorf("--dry-run error %v\nwant %s", err, want)
	}
	if errOut != "" {
		t.Errorf("--dry-run stderr %q", errOut)
	}

	out, errOut, err = runSubs(t, "", "apply", "-f", path)
	if err == nil || !strings.Contains(err.Error(), "apply refused, nothing written: it would delete 1 subscription absent from the file (gone)") {
		t.Errorf("apply = %v", err)
	}
	if out != "" || errOut != "" {
		t.Errorf("a refused apply printed stdout %q stderr %q (it applied nothing)", out, errOut)
	}
	if all, _ := store.List(ctx, ""); len(all) != 2 {
		t.Errorf("a refused apply wrote: %+v", all)
	}

	out = mustRunSubs(t, "apply", "-f", path, "--dry-run", "--prune")
	if want := path + ": 1 subscription; plan:\n  delete gone\n" +
		"dry run, nothing written: would have added 0, updated 0, deleted 1, unchanged 1\n"; out != want {
		t.Errorf("--dry-run --prune printed\n%s\nwant\n%s", out, want)
	}
}

// An entry the egress policy refuses is named like every other bad entry:
// the file, the entry, its line; and the refusal names the option that opens
// the range both as the file and as the environment spell it.
func TestSubsApplyNamesTheLineOfAnEntryTheEgressPolicyRefuses(t *testing.T) {
	mr, _ := subsEnv(t)
	path := filepath.Join(t.TempDir(), "subs.yaml")
	_ = os.WriteFile(path, []byte("subscriptions:\n"+
		"  - {id: remote, tenant_id: acme, url: 'https://a.example/', event_types: [PLAYER_OPTED_IN]}\n"+
		"  - id: local\n    tenant_id: acme\n    url: http://127.0.0.1:9/hook\n    event_types: [PLAYER_OPTED_IN]\n"), 0o600)
	want := path + `: subscriptions[1] (id "local", line 3): field "url": address 127.0.0.1 is blocked by the egress policy: loopback (127.0.0.0/8); ` +
		"delivery.allowed_cidrs (WEBHOOKD_DELIVERY_ALLOWED_CIDRS) opens it with a range that holds it, such as 127.0.0.1/32"
	for _, args := range [][]string{{"apply", "-f", path}, {"apply", "-f", path, "--dry-run"}} {
		out, _, err := runSubs(t, "", args...)
		if err == nil || err.Error() != want {
			t.Errorf("%s: error %v\nwant %s", strings.Join(args, " "), err, want)
		}
		if out != "" || len(mr.keys(t)) != 0 {
			t.Errorf("%s: stdout %q, keys %v", strings.Join(args, " "), out, mr.keys(t))
		}
	}
}

// terminal is stdin on a terminal: a character device a user types on.
type terminal struct{ *strings.Reader }

func (terminal) Stat() (os.FileInfo, error) { return charDevice{}, nil }

type charDevice struct{ os.FileInfo }

func (charDevice) Mode() os.FileMode { return os.ModeDevice | os.ModeCharDevice | 0o620 }

// On a terminal apply asks before deleting: only "yes" deletes.
func TestSubsApplyAsksOnATerminalBeforeDeleting(t *testing.T) {
	for _, tc := range []struct {
		answer  string
		deleted bool
	}{{"yes\n", true}, {"no\n", false}, {"", false}} {
		t.Run(strings.TrimSpace(tc.answer), func(t *testing.T) {
			_, store := subsEnv(t)
			ctx := context.Background()
			if _, err := store.Add(ctx, subscriptions.Subscription{ID: "old", TenantID: "acme", URL: "https://old.example/", EventTypes: []event.Type{event.PlayerOptedIn}, Enabled: true}); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "subs.yaml")
			_ = os.WriteFile(path, []byte("subscriptions:\n  - {id: new, tenant_id: acme, url: 'https://new.example/', event_types: [PLAYER_OPTED_IN]}\n"), 0o600)
			var out, errOut bytes.Buffer
			root := newRootCmd(&out, &errOut)
			root.SetIn(terminal{strings.NewReader(tc.answer)})
			root.SetArgs([]string{"subscriptions", "apply", "-f", path})
			err := root.ExecuteContext(ctx)
			if !strings.Contains(errOut.String(), "1 subscription in Redis is not in "+path+" and would be deleted:\n  old\nDelete them?") {
				t.Errorf("no question on stderr:\n%s", errOut.String())
			}
			all, _ := store.List(ctx, "")
			if tc.deleted {
				if err != nil || out.String() != "added 1, updated 0, deleted 1, unchanged 0\n" || len(all) != 1 || all[0].ID != "new" {
					t.Errorf("confirmed: err %v, stdout %q, table %+v", err, out.String(), all)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "not confirmed") || len(all) != 1 || all[0].ID != "old" {
				t.Errorf("not confirmed: err %v, table %+v", err, all)
			}
		})
	}
}

// Applying a file that lacks the secrets of live subscriptions says so in
// the summary, per subscription; re-applying a backup changes nothing.
func TestSubsApplySummaryNamesSecretsRemoved(t *testing.T) {
	subsEnv(t)
	secret := subscriptions.NewSigningSecret()
	mustRunSubs(t, "add", "--id", "signed", "--tenant", "acme", "--url", "https://a.example/", "--events", "PLAYER_OPTED_IN", "--signing-secret", secret)
	mustRunSubs(t, "add", "--id", "keyed", "--tenant", "acme", "--url", "https://b.example/", "--events", "PLAYER_OPTED_IN", "--api-key", subsTestKey)
	backup := mustRunSubs(t, "list", "-o", "yaml", "--reveal-secrets")
	if out, _, err := runSubs(t, backup, "apply", "-f", "-"); err != nil || out != "added 0, updated 0, deleted 0, unchanged 2\n" {
		t.Fatalf("re-applying the backup to the live table: %q, %v", out, err)
	}
	bare := "subscriptions:\n" +
		"  - {id: signed, tenant_id: acme, url: 'https://a.example/', event_types: [PLAYER_OPTED_IN]}\n" +
		"  - {id: keyed, tenant_id: acme, url: 'https://b.example/', event_types: [PLAYER_OPTED_IN]}\n"
	out, errOut, err := runSubs(t, bare, "apply", "-f", "-")
	if err != nil {
		t.Fatal(err)
	}
	if want := "added 0, updated 2, deleted 0, unchanged 0; removed signing secret of signed; removed API key of keyed\n"; out != want {
		t.Errorf("summary %q, want %q", out, want)
	}
	if !strings.Contains(errOut, "  updated signed: signing_secret (removes its signing secret)\n") {
		t.Errorf("progress does not name the field:\n%s", errOut)
	}
	if strings.Contains(out+errOut, secret) || strings.Contains(out+errOut, subsTestKey) {
		t.Error("apply printed a secret")
	}
}

// update applies subscriptions.Patch: --signing-secret during a rotation
// ends it (one signature), --clear-signing-secret stops signing.
func TestSubsUpdateSigningSecretFollowsThePatchRules(t *testing.T) {
	_, store := subsEnv(t)
	ctx := context.Background()
	id := strings.TrimSpace(mustRunSubs(t, "add", "--tenant", "acme", "--url", "https://a.example/", "--events", "PLAYER_OPTED_IN", "--generate-signing-secret"))
	mustRunSubs(t, "rotate-secret", id, "--grace", "1h")
	next := subscriptions.NewSigningSecret()
	mustRunSubs(t, "update", id, "--signing-secret", next)
	got, _ := store.Get(ctx, id)
	if keys, _ := got.SigningKeys(time.Now()); got.SigningSecret != next || got.PreviousSigningSecret != "" || len(keys) != 1 {
		t.Fatalf("after update --signing-secret during a rotation: %d keys, %+v", len(keys), got.Masked())
	}
	mustRunSubs(t, "rotate-secret", id, "--grace", "1h")
	mustRunSubs(t, "update", id, "--clear-signing-secret")
	if got, _ := store.Get(ctx, id); got.SigningSecret != "" || got.PreviousSigningSecret != "" {
		t.Fatalf("after --clear-signing-secret: %+v", got.Masked())
	}
}

// Every command, not only the worker and `config`, warns of a WEBHOOKD_*
// variable that names no option: a misspelt WEBHOOKD_REDIS_DATABASE would
// otherwise silently act on database 0.
func TestCommandsWarnOfUnknownVariables(t *testing.T) {
	subsEnv(t)
	t.Setenv("WEBHOOKD_REDIS_DATABASE", "5")
	stdout, stderr, err := runSubs(t, "", "list")
	if err != nil {
		t.Fatalf("list: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "WEBHOOKD_REDIS_DATABASE") || !strings.Contains(stderr, "WEBHOOKD_REDIS_DB") {
		t.Fatalf("list gave no warning naming the variable and the option it resembles; stderr:\n%s", stderr)
	}
	if strings.Contains(stdout, "WEBHOOKD_REDIS_DATABASE") {
		t.Fatalf("the warning went to stdout, which scripts parse:\n%s", stdout)
	}
}
