// Package kafkaconn is the one place that turns config.Kafka into kafka-go's
// connection settings: the Dialer of consumer groups and readers, and the
// Transport of writers and admin clients. Both carry the client id, the
// dial timeout, TLS (kafka.tls) and SASL (kafka.sasl), so every connection
// webhookd opens to Kafka is secured the same way.
package kafkaconn

import (
	"crypto/tls"
	"errors"
	"fmt"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/unibo/webhookd/config"
)

// Dialer returns the dialer for consumer groups and readers.
func Dialer(cfg config.Kafka) (*kafka.Dialer, error) {
	tlsCfg, mech, err := security(cfg)
	if err != nil {
		return nil, err
	}
	return &kafka.Dialer{
		ClientID:      cfg.ClientID,
		Timeout:       cfg.DialTimeout,
		DualStack:     true,
		TLS:           tlsCfg,
		SASLMechanism: mech,
	}, nil
}

// Transport returns a transport for writers and kafka.Client. Each call
// returns a new one, with its own connection pool and metadata cache:
// close its idle connections when done with it.
func Transport(cfg config.Kafka) (*kafka.Transport, error) {
	tlsCfg, mech, err := security(cfg)
	if err != nil {
		return nil, err
	}
	return &kafka.Transport{
		ClientID:    cfg.ClientID,
		DialTimeout: cfg.DialTimeout,
		TLS:         tlsCfg,
		SASL:        mech,
	}, nil
}

func security(cfg config.Kafka) (*tls.Config, sasl.Mechanism, error) {
	tlsCfg, err := cfg.TLS.Config("kafka.tls")
	if err != nil {
		return nil, nil, fmt.Errorf("kafka connection: %w", err)
	}
	mech, err := mechanism(cfg.SASL)
	if err != nil {
		return nil, nil, fmt.Errorf("kafka connection: %w", err)
	}
	return tlsCfg, mech, nil
}

// mechanism returns nil when SASL is off. Errors never include the password.
func mechanism(s config.SASL) (sasl.Mechanism, error) {
	var algo scram.Algorithm
	switch s.Mechanism {
	case "":
		return nil, nil
	case config.SASLPlain:
		return plain.Mechanism{Username: s.Username, Password: s.Password}, nil
	case config.SASLScramSHA256:
		algo = scram.SHA256
	case config.SASLScramSHA512:
		algo = scram.SHA512
	default:
		return nil, &config.KeyError{Key: "kafka.sasl.mechanism", Err: fmt.Errorf("unknown mechanism %q", s.Mechanism)}
	}
	m, err := scram.Mechanism(algo, s.Username, s.Password)
	if err != nil {
		// xdg-go/scram fails only on a username or password that SASLprep
		// rejects; its message does not contain them.
		return nil, &config.KeyError{Key: "kafka.sasl.username", Err: fmt.Errorf("%s credentials: %w", s.Mechanism, err)}
	}
	return m, nil
}

// IsAuthError reports whether err says the brokers refused webhookd's
// credentials, or webhookd refused the brokers' certificate: a
// configuration problem that retrying will not fix.
func IsAuthError(err error) bool {
	var verify *tls.CertificateVerificationError
	return errors.Is(err, kafka.SASLAuthenticationFailed) ||
		errors.Is(err, kafka.UnsupportedSASLMechanism) ||
		errors.As(err, &verify)
}
