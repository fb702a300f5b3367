package main

import (
	"testing"
	"time"
)

func TestTokenBucket(t *testing.T) {
	b := tokenBucket{perSecond: 1000, tokens: 1000}
	now := time.Unix(1000, 0)
	admitted := 0
	for range 1500 {
		if b.take(now) {
			admitted++
		}
	}
	if admitted != 1000 {
		t.Fatalf("a burst at one instant admitted %d, want 1000", admitted)
	}
	now = now.Add(100 * time.Millisecond) // 100 tokens back
	admitted = 0
	for range 500 {
		if b.take(now) {
			admitted++
		}
	}
	if admitted != 100 {
		t.Fatalf("100 ms later admitted %d, want 100", admitted)
	}
	now = now.Add(time.Hour) // refills to a second's worth, not more
	admitted = 0
	for range 5000 {
		if b.take(now) {
			admitted++
		}
	}
	if admitted != 1000 {
		t.Fatalf("after an hour admitted %d, want 1000", admitted)
	}
}
