package delivery

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/unibo/webhookd/subscriptions"
)

// The verification snippets the README gives partners (docs/verify) are run
// on what the Sender really sends: they must accept it, during a rotation
// with either secret, and reject a tampered body, an old timestamp and the
// wrong secret. The spec's test vector checks them independently of us.
func TestPartnerVerificationSnippets(t *testing.T) {
	snippets := map[string][]string{
		"node":    {"node", filepath.Join("..", "docs", "verify", "verify_webhook.js")},
		"python3": {"python3", filepath.Join("..", "docs", "verify", "verify_webhook.py")},
	}
	var c capture
	srv := httptest.NewServer(&c)
	defer srv.Close()
	s := testSender(time.Second)
	defer s.Close()
	old, next := subscriptions.NewSigningSecret(), subscriptions.NewSigningSecret()
	sub := &subscriptions.Subscription{ID: "sub_1", URL: srv.URL, SigningSecret: old}
	sub.RotateSigningSecret(next, time.Now(), time.Hour)
	body := []byte(`{"tenant_id":"acme","event_type":"PRIZE_PAYOUT_SUCCEEDED","amount":100.0,"note":"caf\u00e9 \u2713"}`)
	if res := s.Send(context.Background(), EndpointOf(sub, "msg_snippet", time.Now()), body); !res.OK() {
		t.Fatal(res.Err)
	}
	h, got := c.last()
	headers := map[string]string{
		"webhook-id":        h.Get("webhook-id"),
		"webhook-timestamp": h.Get("webhook-timestamp"),
		"webhook-signature": h.Get("webhook-signature"),
	}
	sent, _ := strconv.ParseInt(headers["webhook-timestamp"], 10, 64)
	tampered := bytes.Replace(got, []byte("100.0"), []byte("900.0"), 1)

	cases := []struct {
		name    string
		secret  string
		headers map[string]string
		body    []byte
		now     int64
		want    string
	}{
		{"spec test vector", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", map[string]string{
			"webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek", "webhook-timestamp": "1614265330",
			"webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}, []byte(`{"test": 2432232314}`), 1614265330, "valid"},
		{"delivery, new secret", next, headers, got, sent, "valid"},
		{"delivery, previous secret in its grace period", old, headers, got, sent, "valid"},
		{"tampered body", next, headers, tampered, sent, "invalid"},
		{"replayed 10 minutes later", next, headers, got, sent + 600, "invalid"},
		{"another secret", subscriptions.NewSigningSecret(), headers, got, sent, "invalid"},
	}
	for lang, argv := range snippets {
		if _, err := exec.LookPath(argv[0]); err != nil {
			t.Logf("SKIPPING the %s snippet: %s is not installed", lang, argv[0])
			continue
		}
		for _, tc := range cases {
			in, _ := json.Marshal(map[string]any{"secret": tc.secret, "headers": tc.headers,
				"body_b64": base64.StdEncoding.EncodeToString(tc.body), "now": tc.now})
			cmd := exec.Command(argv[0], argv[1:]...)
			cmd.Stdin = bytes.NewReader(in)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s", lang, err, out)
			}
			if strings.TrimSpace(string(out)) != tc.want {
				t.Errorf("%s snippet, %s: %s, want %s", lang, tc.name, strings.TrimSpace(string(out)), tc.want)
			}
		}
	}
}

// The partner guide shows partners the same verification functions the test
// above runs: they cannot drift apart.
func TestPartnerGuideShowsTheTestedSnippets(t *testing.T) {
	guide := partnerGuideBlocks(t)
	for file, bounds := range map[string][2]string{
		"verify_webhook.js": {"function verifyWebhook", "module.exports"},
		"verify_webhook.py": {"def verify_webhook", "if __name__"},
	} {
		src, err := os.ReadFile(filepath.Join("..", "docs", "verify", file))
		if err != nil {
			t.Fatal(err)
		}
		s := string(src)
		start, end := strings.Index(s, bounds[0]), strings.Index(s, bounds[1])
		if start < 0 || end < start {
			t.Fatalf("%s: cannot find the function between %q and %q", file, bounds[0], bounds[1])
		}
		lang := map[string]string{".js": "javascript", ".py": "python"}[filepath.Ext(file)]
		if fn := strings.TrimSpace(s[start:end]); !strings.Contains(guide[lang], fn) {
			t.Errorf("docs/partner-guide.md does not show docs/verify/%s's verification code as it is", file)
		}
	}
}

// partnerGuideBlocks returns the partner guide's endpoints, the fenced
// blocks after a "<!-- test: verifier -->" line, by language.
func partnerGuideBlocks(t *testing.T) map[string]string {
	t.Helper()
	md, err := os.ReadFile(filepath.Join("..", "docs", "partner-guide.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := map[string]string{}
	lines := strings.Split(string(md), "\n")
	for i := 0; i+1 < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != "<!-- test: verifier -->" || !strings.HasPrefix(lines[i+1], "```") {
			continue
		}
		lang := strings.TrimPrefix(lines[i+1], "```")
		var code []string
		for i += 2; i < len(lines) && lines[i] != "```"; i++ {
			code = append(code, lines[i])
		}
		blocks[lang] = strings.Join(code, "\n") + "\n"
	}
	for _, lang := range []string{"javascript", "python"} {
		if blocks[lang] == "" {
			t.Fatalf("docs/partner-guide.md has no %s block marked <!-- test: verifier -->", lang)
		}
	}
	return blocks
}

// The partner guide's complete endpoints, Node.js and Python exactly as
// printed (with stand-ins for Express and Flask, which are not installed),
// answer what webhookd really sends as the guide says a partner should: 2xx
// to a signed delivery, also with the previous secret during a rotation,
// once per webhook-id; 401 to a wrong API key, a tampered body or another
// secret; 400 to the self-test's invalid JSON and missing event_type.
func TestPartnerGuideEndpointsOnSignedDeliveries(t *testing.T) {
	blocks := partnerGuideBlocks(t)
	frameworks, err := filepath.Abs(filepath.Join("testdata", "partner-frameworks"))
	if err != nil {
		t.Fatal(err)
	}
	var c capture
	srv := httptest.NewServer(&c)
	defer srv.Close()
	s := testSender(time.Second)
	defer s.Close()
	old, next := subscriptions.NewSigningSecret(), subscriptions.NewSigningSecret()
	sub := &subscriptions.Subscription{ID: "sub_guide", URL: srv.URL, APIKey: "partner-key", SigningSecret: old}
	sub.RotateSigningSecret(next, time.Now(), time.Hour)

	type request struct {
		Headers map[string]string `json:"headers"`
		Body    string            `json:"body_b64"`
	}
	send := func(webhookID string, body []byte) request {
		t.Helper()
		if res := s.Send(context.Background(), EndpointOf(sub, webhookID, time.Now()), body); !res.OK() {
			t.Fatal(res.Err)
		}
		h, got := c.last()
		r := request{Headers: map[string]string{}, Body: base64.StdEncoding.EncodeToString(got)}
		for k := range h {
			r.Headers[k] = h.Get(k) // as the server presents them: Express lower-cases, Flask ignores case
		}
		return r
	}
	cash := ExampleCases("PRIZE_PAYOUT_SUCCEEDED", "cash")[0].Body
	optIn := ExampleCases("PLAYER_OPTED_IN", "")[0].Body
	invalidJSON, _ := ScenarioCase("invalid-json")
	missingField, _ := ScenarioCase("missing-field")
	delivered := send("msg_guide_1", cash)
	tampered := delivered
	tampered.Body = base64.StdEncoding.EncodeToString(bytes.Replace(cash, []byte("100.5"), []byte("900.5"), 1))
	wrongKey := send("msg_guide_2", cash)
	wrongKey.Headers["Authorization"] = "Bearer not-the-key"

	cases := []struct {
		name string
		req  request
		want string // "2xx" or a status
	}{
		{"signed delivery", delivered, "2xx"},
		{"the same webhook-id again", delivered, "200"},
		{"another event", send("msg_guide_3", optIn), "2xx"},
		{"tampered body", tampered, "401"},
		{"wrong API key", wrongKey, "401"},
		{"self-test invalid-json", send("msg_guide_4", invalidJSON.Body), "400"},
		{"self-test missing-field", send("msg_guide_5", missingField.Body), "400"},
	}
	reqs := make([]request, len(cases))
	for i, tc := range cases {
		reqs[i] = tc.req
	}
	in, _ := json.Marshal(reqs)
	for lang, run := range map[string]struct{ bin, ext, harness, modules string }{
		"javascript": {"node", ".js", filepath.Join(frameworks, "node", "harness.js"), "NODE_PATH=" + filepath.Join(frameworks, "node", "node_modules")},
		"python":     {"python3", ".py", filepath.Join(frameworks, "python", "harness.py"), "PYTHONPATH=" + filepath.Join(frameworks, "python")},
	} {
		if _, err := exec.LookPath(run.bin); err != nil {
			t.Logf("SKIPPING the partner guide's %s endpoint: %s is not installed", lang, run.bin)
			continue
		}
		// The previous secret still verifies during the rotation: run with
		// it, and with the new one.
		for _, secret := range []string{old, next} {
			file := filepath.Join(t.TempDir(), "endpoint"+run.ext)
			if err := os.WriteFile(file, []byte(blocks[lang]), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(run.bin, run.harness, file)
			cmd.Env = append(os.Environ(), run.modules, "WEBHOOK_API_KEY=partner-key", "WEBHOOK_SECRET="+secret)
			cmd.Stdin = bytes.NewReader(in)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s endpoint: %v\n%s", lang, err, out)
			}
			var statuses []string
			for _, line := range strings.Split(string(out), "\n") {
				if st, ok := strings.CutPrefix(line, "status "); ok {
					statuses = append(statuses, st)
				}
			}
			if len(statuses) != len(cases) {
				t.Fatalf("%s endpoint answered %d of %d requests:\n%s", lang, len(statuses), len(cases), out)
			}
			for i, tc := range cases {
				if got := statuses[i]; got != tc.want && !(tc.want == "2xx" && strings.HasPrefix(got, "2")) {
					t.Errorf("%s endpoint, %s: %s, want %s", lang, tc.name, got, tc.want)
				}
			}
			// Processed once each: the cash prize (its repeat deduplicated) and the opt-in.
			if n := strings.Count(string(out), "Received webhook:"); n != 2 {
				t.Errorf("%s endpoint processed %d events, want 2:\n%s", lang, n, out)
			}
		}
	}
}
