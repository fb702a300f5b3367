package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"
)

// receiverTLS is how an HTTPS receiver serves: a certificate for 127.0.0.1
// signed by a CA made for the run, HTTP/2 offered (ALPN h2) or not.
type receiverTLS struct {
	cert   tls.Certificate
	caFile string // PEM of the CA, for webhookd's SSL_CERT_FILE
	h2     bool
}

// tlsCounts is what an HTTPS receiver saw below HTTP.
type tlsCounts struct {
	conns      atomic.Int64 // TCP connections accepted
	handshakes atomic.Int64 // ClientHellos (every handshake, resumed or full)
	resumed    atomic.Int64 // handshakes that resumed a session
}

func (c *receiverTLS) serverConfig(counts *tlsCounts) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{c.cert},
		MinVersion:   tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			counts.handshakes.Add(1)
			return nil, nil
		},
		VerifyConnection: func(cs tls.ConnectionState) error {
			if cs.DidResume {
				counts.resumed.Add(1)
			}
			return nil
		},
	}
}

// newReceiverTLS makes a CA and a leaf certificate for 127.0.0.1 (ECDSA
// P-256, as most partners' are), and writes the CA's PEM into dir.
func newReceiverTLS(dir string, h2 bool) (*receiverTLS, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "webhookd bench CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("bench CA: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("bench leaf certificate: %w", err)
	}
	caFile := filepath.Join(dir, fmt.Sprintf("bench-ca-%d.pem", now.UnixNano()))
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		return nil, err
	}
	return &receiverTLS{
		cert:   tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: leafKey},
		caFile: caFile,
		h2:     h2,
	}, nil
}
