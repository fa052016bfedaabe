package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// certFiles are the TLS certificate the peers serve HTTPS with in the
// HTTP/2 scenarios: the same ECDSA P-256 key and self-signed certificate for
// every peer (h2load does not verify it), as PEM files.
type certFiles struct {
	certFile string
	keyFile  string
	pemFile  string // certificate and key in one file, as HAProxy wants them
}

// writeCertFiles makes a certificate for 127.0.0.1 and writes it into dir.
func writeCertFiles(dir string) (*certFiles, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "lbbench"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	c := &certFiles{
		certFile: filepath.Join(dir, "tls.crt"),
		keyFile:  filepath.Join(dir, "tls.key"),
		pemFile:  filepath.Join(dir, "tls.pem"),
	}
	// nginx's workers run unprivileged and read them after start.
	for _, f := range []struct {
		path string
		data []byte
	}{{c.certFile, certPEM}, {c.keyFile, keyPEM}, {c.pemFile, append(append([]byte{}, certPEM...), keyPEM...)}} {
		if err := os.WriteFile(f.path, f.data, 0o644); err != nil {
			return nil, err
		}
	}
	return c, nil
}
