package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/unibo/webhookd/config"
)

// knownMetrics are the webhookd_* metrics the code exports (metrics/metrics.go,
// and per endpoint metrics/endpoints.go).
// The alert rules and the dashboard may use no other: a renamed metric would
// leave an alert that never fires and a panel that stays empty.
var knownMetrics = map[string]bool{
	"webhookd_deliveries_total":          true,
	"webhookd_delivery_duration_seconds": true,
	"webhookd_event_to_delivery_seconds": true,
	"webhookd_events_consumed_total":     true,
	"webhookd_in_flight":                 true,
	"webhookd_subscriptions":             true,
	"webhookd_subscriptions_age_seconds": true,
	"webhookd_consumer_lag":              true,
	"webhookd_circuit_open":              true,

	"webhookd_endpoint_concurrency_limit":       true,
	"webhookd_endpoint_in_flight":               true,
	"webhookd_endpoint_queued":                  true,
	"webhookd_endpoint_rate_limit":              true,
	"webhookd_endpoint_paused_until_seconds":    true,
	"webhookd_endpoint_silent":                  true,
	"webhookd_endpoint_deferred_age_seconds":    true,
	"webhookd_endpoint_deferred_total":          true,
	"webhookd_endpoint_deferred_returned_total": true,
}

type doc = map[string]any

// get walks a decoded YAML/JSON tree by map keys and list indexes ("0").
func get(v any, path ...string) any {
	for _, p := range path {
		switch n := v.(type) {
		case map[string]any:
			v = n[p]
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i < 0 || i >= len(n) {
				return nil
			}
			v = n[i]
		default:
			return nil
		}
	}
	return v
}

func str(v any, path ...string) string {
	s, _ := get(v, path...).(string)
	return s
}

func list(v any, path ...string) []any {
	l, _ := get(v, path...).([]any)
	return l
}

func mapOf(v any, path ...string) map[string]any {
	m, _ := get(v, path...).(map[string]any)
	return m
}

// scalar renders a YAML scalar (string, int, bool) as the string Kubernetes
// would pass in an env var or a port.
func scalar(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int:
		return strconv.Itoa(x)
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case nil:
		return ""
	default:
		return ""
	}
}

// manifests decodes every YAML document of every file under kubernetes/, by file.
func manifests(t *testing.T) map[string][]doc {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("kubernetes", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests under deploy/kubernetes: %v", err)
	}
	out := map[string][]doc{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var d doc
			err := dec.Decode(&d)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if d == nil {
				continue
			}
			out[filepath.Base(f)] = append(out[filepath.Base(f)], d)
		}
	}
	return out
}

// byKind finds the one object of a kind and name across the given files.
func byKind(t *testing.T, all map[string][]doc, kind, name string) doc {
	t.Helper()
	var found []doc
	for _, docs := range all {
		for _, d := range docs {
			if str(d, "kind") == kind && str(d, "metadata", "name") == name {
				found = append(found, d)
			}
		}
	}
	if len(found) != 1 {
		t.Fatalf("want exactly one %s %q under deploy/kubernetes, found %d", kind, name, len(found))
	}
	return found[0]
}

func opsPort(t *testing.T) int {
	t.Helper()
	_, p, err := net.SplitHostPort(config.Defaults().Ops.Addr)
	if err != nil {
		t.Fatalf("config.Defaults().Ops.Addr: %v", err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func container(t *testing.T, dep doc) doc {
	t.Helper()
	cs := list(dep, "spec", "template", "spec", "containers")
	for _, c := range cs {
		if str(c, "name") == "webhookd" {
			return c.(map[string]any)
		}
	}
	t.Fatal("Deployment webhookd has no container named webhookd")
	return nil
}

// containerEnv is the Deployment's explicit env (name → value).
func containerEnv(t *testing.T, c doc) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, e := range list(c, "env") {
		name := str(e, "name")
		if get(e, "valueFrom") != nil {
			t.Errorf("env %s uses valueFrom; the test only understands literal values", name)
			continue
		}
		env[name] = scalar(get(e, "value"))
	}
	return env
}

func stringMap(t *testing.T, d doc, key string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for k, v := range mapOf(d, key) {
		s, ok := v.(string)
		if !ok {
			t.Errorf("%s %s: %s.%s must be a quoted string, got %T", str(d, "kind"), str(d, "metadata", "name"), key, k, v)
		}
		out[k] = s
	}
	return out
}

func TestDeploymentMatchesOpsServer(t *testing.T) {
	all := manifests(t)
	dep := byKind(t, all, "Deployment", "webhookd")
	cm := byKind(t, all, "ConfigMap", "webhookd-config")
	c := container(t, dep)

	// The ops port is the one webhookd listens on: ops.addr from the ConfigMap,
	// else the default.
	want := opsPort(t)
	if a, ok := stringMap(t, cm, "data")[config.EnvName("ops.addr")]; ok {
		_, p, err := net.SplitHostPort(a)
		if err != nil {
			t.Fatalf("ConfigMap %s=%q: %v", config.EnvName("ops.addr"), a, err)
		}
		want, _ = strconv.Atoi(p)
	}
	var portName string
	for _, p := range list(c, "ports") {
		if get(p, "containerPort") == want {
			portName = str(p, "name")
		}
	}
	if portName == "" {
		t.Fatalf("container has no containerPort %d (ops.addr); ports: %v", want, list(c, "ports"))
	}
	onOps := func(v any) bool {
		return v == want || (portName != "" && v == portName)
	}
	for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz"} {
		if got := str(c, probe, "httpGet", "path"); got != path {
			t.Errorf("%s path = %q, want %q", probe, got, path)
		}
		if p := get(c, probe, "httpGet", "port"); !onOps(p) {
			t.Errorf("%s port = %v, want %d or %q", probe, p, want, portName)
		}
	}

	// Shutdown: the kubelet must not SIGKILL before shutdown_timeout is over.
	env := containerEnv(t, c)
	shutdown := config.Defaults().ShutdownTimeout
	if v, ok := env[config.EnvName("shutdown_timeout")]; ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("%s=%q: %v", config.EnvName("shutdown_timeout"), v, err)
		}
		shutdown = d
	}
	grace, ok := get(dep, "spec", "template", "spec", "terminationGracePeriodSeconds").(int)
	if !ok {
		t.Fatal("terminationGracePeriodSeconds is not set (the default 30s leaves too little margin)")
	}
	if time.Duration(grace)*time.Second <= shutdown {
		t.Errorf("terminationGracePeriodSeconds %d must exceed shutdown_timeout %s", grace, shutdown)
	}

	// The image runs as nonroot on a read-only root filesystem.
	for _, k := range []string{"runAsNonRoot", "readOnlyRootFilesystem"} {
		if get(c, "securityContext", k) != true {
			t.Errorf("container securityContext.%s must be true", k)
		}
	}
	if get(c, "securityContext", "allowPrivilegeEscalation") != false {
		t.Error("container securityContext.allowPrivilegeEscalation must be false")
	}

	// envFrom names the ConfigMap and Secret that exist.
	refs := map[string]bool{}
	for _, e := range list(c, "envFrom") {
		refs["ConfigMap/"+str(e, "configMapRef", "name")] = true
		refs["Secret/"+str(e, "secretRef", "name")] = true
	}
	for _, r := range []string{"ConfigMap/webhookd-config", "Secret/webhookd-secrets"} {
		if !refs[r] {
			t.Errorf("container envFrom does not reference %s", r)
		}
	}
	_ = byKind(t, all, "Secret", "webhookd-secrets")
}

func TestServiceTargetsOpsPort(t *testing.T) {
	all := manifests(t)
	dep := byKind(t, all, "Deployment", "webhookd")
	svc := byKind(t, all, "Service", "webhookd-metrics")
	c := container(t, dep)
	podLabels := mapOf(dep, "spec", "template", "metadata", "labels")

	sel := mapOf(svc, "spec", "selector")
	if len(sel) == 0 {
		t.Fatal("Service has no selector")
	}
	for k, v := range sel {
		if podLabels[k] != v {
			t.Errorf("Service selector %s=%v does not match the pod labels %v", k, v, podLabels)
		}
	}
	ports := list(svc, "spec", "ports")
	if len(ports) != 1 {
		t.Fatalf("Service: want one port, got %d", len(ports))
	}
	target := get(ports[0], "targetPort")
	var ok bool
	var containerPort int
	for _, p := range list(c, "ports") {
		if str(p, "name") == "ops" {
			containerPort, _ = get(p, "containerPort").(int)
		}
		if target == get(p, "containerPort") || target == str(p, "name") {
			ok = str(p, "name") == "ops"
		}
	}
	if !ok {
		t.Errorf("Service targetPort %v is not the container's ops port", target)
	}
	ann := mapOf(svc, "metadata", "annotations")
	if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/path"] != "/metrics" ||
		ann["prometheus.io/port"] != strconv.Itoa(containerPort) {
		t.Errorf("Service prometheus.io annotations %v: want scrape \"true\", path /metrics, port %d", ann, containerPort)
	}

	pdb := byKind(t, all, "PodDisruptionBudget", "webhookd")
	for k, v := range mapOf(pdb, "spec", "selector", "matchLabels") {
		if podLabels[k] != v {
			t.Errorf("PodDisruptionBudget selector %s=%v does not match the pod labels", k, v)
		}
	}
}

// TestEnvIsValidConfig checks every WEBHOOKD_* variable the manifests set is a
// real option, and that together they pass config.Load's validation.
func TestEnvIsValidConfig(t *testing.T) {
	all := manifests(t)
	cm := byKind(t, all, "ConfigMap", "webhookd-config")
	sec := byKind(t, all, "Secret", "webhookd-secrets")
	c := container(t, byKind(t, all, "Deployment", "webhookd"))

	known := map[string]bool{}
	for _, o := range config.Options {
		known[config.EnvName(o.Key)] = true
	}
	env := map[string]string{}
	for source, m := range map[string]map[string]string{
		"ConfigMap webhookd-config data":     stringMap(t, cm, "data"),
		"Secret webhookd-secrets stringData": stringMap(t, sec, "stringData"),
		"Deployment webhookd container env":  containerEnv(t, c),
	} {
		for k, v := range m {
			if !strings.HasPrefix(k, config.EnvPrefix+"_") {
				continue // GOMEMLIMIT and the like
			}
			if !known[k] {
				t.Errorf("%s: %s is not a webhookd option (see `webhookd config reference`)", source, k)
			}
			env[k] = v
		}
	}
	if len(mapOf(sec, "data")) > 0 {
		t.Error("Secret webhookd-secrets: use stringData, so the test can read it")
	}

	// Only the manifests' variables: clear whatever the developer's shell set.
	for _, o := range config.Options {
		name := config.EnvName(o.Key)
		if old, ok := os.LookupEnv(name); ok {
			t.Setenv(name, old) // registers the restore
			os.Unsetenv(name)
		}
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	cfg, err := config.Load("")
	if err != nil {
		t.Fatalf("the manifests' environment does not load:\n%v", err)
	}

	// The autoscaler watches the group and a topic webhookd consumes, and never
	// asks for more replicas than there are partitions to share.
	so := byKind(t, all, "ScaledObject", "webhookd")
	if n := str(so, "spec", "scaleTargetRef", "name"); n != "webhookd" {
		t.Errorf("ScaledObject scales %q, want the Deployment webhookd", n)
	}
	for _, tr := range list(so, "spec", "triggers") {
		if str(tr, "type") != "kafka" {
			continue
		}
		if g := str(tr, "metadata", "consumerGroup"); g != cfg.Kafka.GroupID {
			t.Errorf("ScaledObject consumerGroup %q, webhookd's group is %q", g, cfg.Kafka.GroupID)
		}
		topic := str(tr, "metadata", "topic")
		found := false
		for _, tp := range cfg.Kafka.Topics {
			found = found || tp == topic
		}
		if !found {
			t.Errorf("ScaledObject watches topic %q, webhookd consumes %v", topic, cfg.Kafka.Topics)
		}
		if b := str(tr, "metadata", "bootstrapServers"); b != strings.Join(cfg.Kafka.Brokers, ",") {
			t.Errorf("ScaledObject bootstrapServers %q, webhookd's brokers are %v", b, cfg.Kafka.Brokers)
		}
	}
	maxReplicas, _ := get(so, "spec", "maxReplicaCount").(int)
	if limit := cfg.Kafka.Partitions * len(cfg.Kafka.Topics); maxReplicas < 1 || maxReplicas > limit {
		t.Errorf("ScaledObject maxReplicaCount %d: want 1..%d (partitions x topics; more replicas idle)", maxReplicas, limit)
	}
}

func TestKustomizationListsManifests(t *testing.T) {
	all := manifests(t)
	k := all["kustomization.yaml"]
	if len(k) != 1 {
		t.Fatal("deploy/kubernetes/kustomization.yaml missing")
	}
	listed := map[string]bool{}
	for _, r := range list(k[0], "resources") {
		listed[r.(string)] = true
	}
	var files []string
	for f := range all {
		files = append(files, f)
	}
	sort.Strings(files)
	for _, f := range files {
		switch f {
		case "kustomization.yaml":
		case "hpa-cpu.yaml":
			if listed[f] {
				t.Error("hpa-cpu.yaml must not be in kustomization.yaml: it would fight the ScaledObject")
			}
		default:
			if !listed[f] {
				t.Errorf("%s is not listed in kustomization.yaml", f)
			}
		}
	}
	for r := range listed {
		if _, ok := all[r]; !ok {
			t.Errorf("kustomization.yaml lists %s, which does not exist", r)
		}
	}
}

var metricRE = regexp.MustCompile(`\bwebhookd_[a-z0-9_]+`)

// checkMetrics reports every webhookd_* name in expr that the code does not
// export (histogram series suffixes allowed).
func checkMetrics(t *testing.T, where, expr string) int {
	t.Helper()
	names := metricRE.FindAllString(expr, -1)
	for _, n := range names {
		base := n
		for _, suf := range []string{"_bucket", "_count", "_sum"} {
			if b := strings.TrimSuffix(n, suf); b != n && knownMetrics[b] {
				base = b
			}
		}
		if !knownMetrics[base] {
			t.Errorf("%s uses %s, which webhookd does not export", where, n)
		}
	}
	return len(names)
}

func TestAlertRules(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("prometheus", "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&rules); err != nil {
		t.Fatalf("alerts.yaml: %v", err)
	}
	seen := map[string]bool{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || strings.TrimSpace(r.Expr) == "" {
				t.Errorf("group %s: a rule without alert name or expr", g.Name)
				continue
			}
			if seen[r.Alert] {
				t.Errorf("alert %s defined twice", r.Alert)
			}
			seen[r.Alert] = true
			if r.For != "" {
				if _, err := time.ParseDuration(r.For); err != nil {
					t.Errorf("alert %s: for %q: %v", r.Alert, r.For, err)
				}
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("alert %s needs summary and description annotations", r.Alert)
			}
			if r.Labels["severity"] == "" {
				t.Errorf("alert %s has no severity label", r.Alert)
			}
			if strings.Count(r.Expr, "(") != strings.Count(r.Expr, ")") {
				t.Errorf("alert %s: unbalanced parentheses in %q", r.Alert, r.Expr)
			}
			checkMetrics(t, "alert "+r.Alert, r.Expr)
		}
	}
	for _, a := range []string{
		"WebhookdConsumerLagGrowing", "WebhookdDeliveryFailureRatio", "WebhookdDeadLettersGrowing",
		"WebhookdDown", "WebhookdSubscriptionTableStale", "WebhookdCircuitOpen",
		"WebhookdPartnerThrottled", "WebhookdDeferredBacklogGrowing",
	} {
		if !seen[a] {
			t.Errorf("alert %s missing", a)
		}
	}
}

func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("grafana", "webhookd.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d map[string]any
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("webhookd.json: %v", err)
	}
	hasDS := false
	for _, v := range list(d, "templating", "list") {
		if str(v, "name") == "datasource" && str(v, "type") == "datasource" && str(v, "query") == "prometheus" {
			hasDS = true
		}
	}
	if !hasDS {
		t.Error("dashboard needs a datasource variable of type datasource, query prometheus")
	}
	panels := list(d, "panels")
	if len(panels) == 0 {
		t.Fatal("dashboard has no panels")
	}
	used := 0
	for _, p := range panels {
		targets := list(p, "targets")
		if len(targets) == 0 {
			t.Errorf("panel %q has no queries", str(p, "title"))
		}
		for _, tg := range targets {
			used += checkMetrics(t, "panel "+strconv.Quote(str(p, "title")), str(tg, "expr"))
		}
	}
	if used == 0 {
		t.Error("dashboard uses no webhookd_* metric")
	}
}
