package config

import (
	"reflect"
	"strings"
	"testing"
)

// A WEBHOOKD_* variable that names no option used to be ignored in silence
// (WEBHOOKD_REDIS_DATABASE=5 left the worker on database 0). UnknownEnv
// names each, with the nearest option; the test suite's variables are not
// options and are left alone.
func TestUnknownEnvNamesEachVariableWithTheNearestOption(t *testing.T) {
	environ := []string{
		"PATH=/usr/bin",
		"WEBHOOKD_REDIS_DB=5",             // an option
		"WEBHOOKD_REDIS_DATABASE=5",       // an abbreviation missed
		"WEBHOOKD_KAFKA_GROUPID=payouts",  // a typo
		"WEBHOOKD_PORT=8080",              // nothing near
		"webhookd_log_level=debug",        // names are case-sensitive
		"WEBHOOKD_TEST_KAFKA_BROKERS=k:1", // the test suite's
		"WEBHOOKD_TEST_TLS_DIR=/tmp",
		"WEBHOOKD_EMPTY=",
	}
	got := UnknownEnv(environ)
	want := []UnknownVar{
		{Name: "WEBHOOKD_EMPTY"},
		{Name: "WEBHOOKD_KAFKA_GROUPID", Suggestion: "WEBHOOKD_KAFKA_GROUP_ID"},
		{Name: "WEBHOOKD_PORT"},
		{Name: "WEBHOOKD_REDIS_DATABASE", Suggestion: "WEBHOOKD_REDIS_DB"},
		{Name: "webhookd_log_level", Suggestion: "WEBHOOKD_LOG_LEVEL"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
	if msg := got[3].Error(); msg != "WEBHOOKD_REDIS_DATABASE: no option has this variable, so it is ignored; did you mean WEBHOOKD_REDIS_DB (redis.db)?" {
		t.Fatal(msg)
	}
	if msg := got[2].Error(); !strings.Contains(msg, "webhookd config reference") {
		t.Fatal(msg)
	}
}

// WEBHOOKD_TEST_ is the test suite's: an option there would be skipped by
// UnknownEnv's exclusion and collide with the suite's variables.
func TestNoOptionTakesTheTestPrefix(t *testing.T) {
	for _, o := range Options {
		if strings.HasPrefix(o.Env(), TestEnvPrefix) {
			t.Errorf("option %s has variable %s, under the test suite's prefix %s", o.Key, o.Env(), TestEnvPrefix)
		}
	}
}

func TestClosestVariable(t *testing.T) {
	for in, want := range map[string]string{
		"WEBHOOKD_REDIS_DATABASE":                "WEBHOOKD_REDIS_DB",
		"WEBHOOKD_KAFKA_GROUPID":                 "WEBHOOKD_KAFKA_GROUP_ID",
		"WEBHOOKD_LOGLEVEL":                      "WEBHOOKD_LOG_LEVEL",
		"WEBHOOKD_SUBSCRIPTIONS_ENCRYPTION_KEYS": "WEBHOOKD_SUBSCRIPTIONS_ENCRYPTION_KEY",
		"WEBHOOKD_PORT":                          "",
	} {
		if got, ok := Closest(in, envNames()); got != want || ok != (want != "") {
			t.Errorf("Closest(%s) = %q, %v; want %q", in, got, ok, want)
		}
	}
}
