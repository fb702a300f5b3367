package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// KeyError is a problem with the value of one configuration key.
type KeyError struct {
	Key string
	Err error
}

func (e *KeyError) Error() string { return fmt.Sprintf("%s (%s): %v", e.Key, EnvName(e.Key), e.Err) }

func (e *KeyError) Unwrap() error { return e.Err }

// Config builds the client TLS configuration; nil when TLS is disabled.
// prefix is the block's key (kafka.tls, redis.tls): errors name the key at
// fault. Files are read on every call, so a rotated certificate is picked
// up by the next connection built from a fresh call.
func (t TLS) Config(prefix string) (*tls.Config, error) {
	if !t.Enabled {
		return nil, nil
	}
	c := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // an explicit, documented test-only switch
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, &KeyError{Key: prefix + ".ca_file", Err: fmt.Errorf("read CA file: %w", err)}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, &KeyError{Key: prefix + ".ca_file", Err: fmt.Errorf("%s holds no PEM certificate", t.CAFile)}
		}
		c.RootCAs = pool
	}
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		return nil, &KeyError{Key: prefix + ".key_file", Err: errors.New("is required with " + prefix + ".cert_file")}
	case t.CertFile == "" && t.KeyFile != "":
		return nil, &KeyError{Key: prefix + ".cert_file", Err: errors.New("is required with " + prefix + ".key_file")}
	case t.CertFile != "":
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, &KeyError{Key: prefix + ".cert_file", Err: fmt.Errorf("load client certificate and key: %w", err)}
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}
