package order

import (
	"strings"
	"testing"
)

func TestReady(t *testing.T) {
	c := Chain{Settled: 12, Last: 20, Start: 15, StartPrev: 12}
	cases := []struct {
		name     string
		c        Chain
		ok       bool
		o, prev  int64
		want     Gate
		wantName string
	}{
		{"prev settled", c, true, 15, 12, GateGo, "go"},
		{"prev below settled", c, true, 13, 11, GateGo, "go"},
		{"prev not settled", c, true, 20, 15, GateWait, "wait"},
		{"member settled", c, true, 12, 10, GateDrop, "drop"},
		{"member below settled", c, true, 5, 4, GateDrop, "drop"},
		{"chain absent", Chain{}, false, 20, 15, GateGo, "go"},
		{"chain absent, any offset", Chain{}, false, 0, -1, GateGo, "go"},
	}
	for _, tc := range cases {
		got := Ready(tc.c, tc.ok, tc.o, tc.prev)
		if got != tc.want || got.String() != tc.wantName {
			t.Errorf("%s: Ready(%+v, %v, %d, %d) = %v, want %v", tc.name, tc.c, tc.ok, tc.o, tc.prev, got, tc.want)
		}
	}
	if var0 := Gate(0); var0 != GateWait {
		t.Errorf("zero Gate = %v, want wait (a Gate nobody set must not deliver)", var0)
	}
}

func TestFieldSeparatesSubscriptionAndKey(t *testing.T) {
	if Field("sub_a", []byte("bkey")) == Field("sub_ab", []byte("key")) {
		t.Error("Field(sub_a, bkey) == Field(sub_ab, key)")
	}
	if got := Field("sub_a", []byte("k")); got != "sub_a\x00k" {
		t.Errorf("Field = %q, want sub_a\\x00k", got)
	}
}

func TestEncodeDecode(t *testing.T) {
	c := Chain{Settled: -1, Last: 1<<53 - 1, Start: 7, StartPrev: -1}
	if s := encode(c); s != "-1 9007199254740991 7 -1" {
		t.Errorf("encode = %q", s)
	}
	if got, err := decode(encode(c)); err != nil || got != c {
		t.Errorf("decode(encode(%+v)) = %+v, %v", c, got, err)
	}
	for _, bad := range []string{"", "1 2 3", "1 2 3 x", "1 2 3 4 5"} {
		if _, err := decode(bad); err == nil || !strings.Contains(err.Error(), "malformed chain") {
			t.Errorf("decode(%q) = %v, want a malformed chain error", bad, err)
		}
	}
}
