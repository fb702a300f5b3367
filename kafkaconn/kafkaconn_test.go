package kafkaconn

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/unibo/webhookd/config"
)

// Every connection kind gets the configured mechanism and TLS; without
// them, plaintext as before.
func TestDialerAndTransportCarrySecurity(t *testing.T) {
	for _, mech := range []string{"", config.SASLPlain, config.SASLScramSHA256, config.SASLScramSHA512} {
		t.Run("mechanism "+mech, func(t *testing.T) {
			cfg := config.Defaults().Kafka
			cfg.SASL = config.SASL{Mechanism: mech, Username: "webhookd", Password: "secret"}
			cfg.TLS = config.TLS{Enabled: mech != "", ServerName: "kafka.internal"}
			d, err := Dialer(cfg)
			if err != nil {
				t.Fatal(err)
			}
			tr, err := Transport(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if d.ClientID != cfg.ClientID || tr.ClientID != cfg.ClientID || d.Timeout != cfg.DialTimeout || tr.DialTimeout != cfg.DialTimeout {
				t.Fatalf("client id or timeout lost: %+v %+v", d, tr)
			}
			if mech == "" {
				if d.SASLMechanism != nil || tr.SASL != nil || d.TLS != nil || tr.TLS != nil {
					t.Fatal("SASL or TLS without configuration")
				}
				return
			}
			if d.SASLMechanism == nil || d.SASLMechanism.Name() != mech || tr.SASL == nil || tr.SASL.Name() != mech {
				t.Fatalf("mechanism: dialer %v, transport %v; want %s", d.SASLMechanism, tr.SASL, mech)
			}
			if d.TLS == nil || d.TLS.ServerName != "kafka.internal" || tr.TLS == nil || tr.TLS.ServerName != "kafka.internal" {
				t.Fatal("TLS settings lost")
			}
		})
	}
}

func TestUnreadableCAFileNamesTheKey(t *testing.T) {
	cfg := config.Defaults().Kafka
	cfg.TLS = config.TLS{Enabled: true, CAFile: filepath.Join(t.TempDir(), "missing.pem")}
	_, err := Transport(cfg)
	var ke *config.KeyError
	if !errors.As(err, &ke) || ke.Key != "kafka.tls.ca_file" || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("error %v does not name kafka.tls.ca_file", err)
	}
	if !strings.Contains(err.Error(), "WEBHOOKD_KAFKA_TLS_CA_FILE") {
		t.Fatalf("error %v does not name the variable", err)
	}
}

func TestIsAuthError(t *testing.T) {
	for err, want := range map[error]bool{
		fmt.Errorf("metadata: %w", kafka.SASLAuthenticationFailed): true,
		fmt.Errorf("dial: %w", kafka.UnsupportedSASLMechanism):     true,
		fmt.Errorf("metadata: %w", kafka.LeaderNotAvailable):       false,
		errors.New("dial tcp 127.0.0.1:9092: connection refused"):  false,
	} {
		if got := IsAuthError(err); got != want {
			t.Errorf("IsAuthError(%v) = %v, want %v", err, got, want)
		}
	}
}
