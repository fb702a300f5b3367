package main

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/unibo/webhookd/delivery"
	"github.com/unibo/webhookd/internal/testenv"
	"github.com/unibo/webhookd/subscriptions"
)

// startReceiverCmd runs `webhookd receiver args...` until the test ends and
// returns its URL and what it prints.
func startReceiverCmd(t *testing.T, args ...string) (string, *testenv.LockedBuffer) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	var out, errOut testenv.LockedBuffer
	root := newRootCmd(&out, &errOut)
	root.SetArgs(append([]string{"receiver", "--addr", addr}, args...))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("receiver: %v", err)
		}
	})
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(errOut.String(), "listening"); {
		select {
		case err := <-done:
			t.Fatalf("receiver exited: %v\n%s", err, errOut.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("receiver did not start:\n%s", errOut.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return "http://" + addr + "/webhooks/prizes", &out
}

// `webhookd receiver` is the guide's example endpoint: every scenario of
// send-test passes against it, signed and with an API key, and it prints
// the bodies as they were sent.
func TestReceiverPassesEverySendTestScenario(t *testing.T) {
	t.Setenv("WEBHOOKD_DELIVERY_ALLOWED_CIDRS", "127.0.0.0/8")
	secret := subscriptions.NewSigningSecret()
	url, printed := startReceiverCmd(t, "--api-key", "k-123", "--signing-secret", secret)
	for _, s := range delivery.ProbeScenarios() {
		if out, err := runRoot(t, "send-test", "--url", url, "--api-key", "k-123", "--signing-secret", secret, "--scenario", s); err != nil {
			t.Errorf("scenario %s: %v\n%s", s, err, out)
		}
	}
	out, err := runRoot(t, "send-test", "--url", url, "--api-key", "k-123", "--signing-secret", secret, "--all")
	if err != nil || strings.Count(out, " ok ") != len(delivery.ExampleCases("", "")) {
		t.Fatalf("--all: %v\n%s", err, out)
	}
	// Signed with another secret, or without the key: refused.
	if out, err := runRoot(t, "send-test", "--url", url, "--api-key", "k-123", "--signing-secret", subscriptions.NewSigningSecret(),
		"--event", "PLAYER_OPTED_IN"); err == nil || !strings.Contains(out, "401") {
		t.Fatalf("a delivery signed with another secret: %v\n%s", err, out)
	}
	if out, err := runRoot(t, "send-test", "--url", url, "--signing-secret", secret, "--event", "PLAYER_OPTED_IN"); err == nil || !strings.Contains(out, "401") {
		t.Fatalf("a delivery without the API key: %v\n%s", err, out)
	}
	cash := delivery.ExampleCases("PRIZE_PAYOUT_SUCCEEDED", "cash")[0].Body
	if p := printed.String(); !strings.Contains(p, "\n"+string(cash)+"\n") || !strings.Contains(p, "\n"+string(cash[:len(cash)/2])+"\n") {
		t.Fatalf("the receiver did not print the bodies as sent:\n%s", p)
	}
}

func TestReceiverRefusesAMalformedSigningSecret(t *testing.T) {
	if _, err := runRoot(t, "receiver", "--signing-secret", "not-a-secret"); err == nil || !strings.Contains(err.Error(), "--signing-secret") {
		t.Fatalf("got %v", err)
	}
}
