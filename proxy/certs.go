package proxy

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultCertPollInterval is how often certificate files are checked for
// changes when TLSConfig.ReloadInterval is zero.
const DefaultCertPollInterval = 5 * time.Second

// CertificateFiles names one certificate chain and its private key, both PEM
// files.
type CertificateFiles struct {
	// CertFile holds the server certificate first, then any intermediates.
	CertFile string
	// KeyFile holds the private key of the server certificate.
	KeyFile string
}

// certStore holds the certificates the TLS listener serves and replaces them
// when their files change. Handshakes read the current set through an atomic
// pointer, so a reload never blocks one; connections already established
// keep the certificate they were made with.
type certStore struct {
	files []CertificateFiles
	log   *slog.Logger
	set   atomic.Pointer[certSet]

	mu     sync.Mutex // serialises loads; guards stamps
	stamps []fileStamp

	checks atomic.Uint64 // rounds of file checks done, for tests
	stop   chan struct{}
	done   chan struct{}
}

// certSet is one loaded generation of certificates, indexed for SNI.
type certSet struct {
	certs  []*tls.Certificate            // in configured order
	def    *tls.Certificate              // the first: no SNI, or no match
	byName map[string][]*tls.Certificate // lower-case DNS names, wildcards as "*.example.com"
}

// fileStamp is what a file held when it was last loaded; a change in it is
// a reason to load again. It is a digest of the content rather than the
// modification time: a file rewritten within the file system's timestamp
// granularity (a few milliseconds) keeps its time, and a file touched
// without change is no reason to reload.
type fileStamp struct {
	sum     [sha256.Size]byte
	missing bool
}

// newCertStore loads every pair or returns an error naming the file at fault.
func newCertStore(files []CertificateFiles, log *slog.Logger) (*certStore, error) {
	if len(files) == 0 {
		return nil, errors.New("TLS: no certificates configured")
	}
	s := &certStore{files: files, log: log}
	stamps := s.stampFiles()
	set, err := loadCertSet(files)
	if err != nil {
		return nil, err
	}
	s.stamps = stamps
	s.set.Store(set)
	set.log(log, "TLS certificate loaded")
	return s, nil
}

// getCertificate is tls.Config.GetCertificate: the certificate for the name
// the client asked for, by exact name, then by wildcard, then the default.
// Among several certificates for one name it prefers one the client
// supports (an ECDSA and an RSA one, say).
func (s *certStore) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	set := s.set.Load()
	name := strings.TrimSuffix(strings.ToLower(hello.ServerName), ".")
	if name == "" {
		return set.def, nil
	}
	if c := set.pick(name, hello); c != nil {
		return c, nil
	}
	if i := strings.IndexByte(name, '.'); i > 0 {
		if c := set.pick("*"+name[i:], hello); c != nil {
			return c, nil
		}
	}
	return set.def, nil
}

func (cs *certSet) pick(name string, hello *tls.ClientHelloInfo) *tls.Certificate {
	certs := cs.byName[name]
	switch len(certs) {
	case 0:
		return nil
	case 1:
		return certs[0]
	}
	for _, c := range certs {
		if hello.SupportsCertificate(c) == nil {
			return c
		}
	}
	return certs[0]
}

// reload loads every pair again and, only if all load, serves them from now
// on. On failure the certificates in use stay and the error says why.
func (s *certStore) reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stamps = s.stampFiles()
	set, err := loadCertSet(s.files)
	if err != nil {
		s.log.Error("TLS certificate reload failed; still serving the previous certificates", "error", err.Error())
		return err
	}
	s.set.Store(set)
	set.log(s.log, "TLS certificate reloaded")
	return nil
}

// watch checks the files every interval and reloads when one changed, until
// close. The files are small, so reading them every few seconds is cheap,
// and their content shows every change where modification times may not. A
// failed reload is not retried until a file changes again, so a broken pair
// is logged once, not every interval.
func (s *certStore) watch(interval time.Duration) {
	s.stop = make(chan struct{})
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				if s.changed() {
					s.reload() //nolint:errcheck // logged by reload
				}
				s.checks.Add(1)
			}
		}
	}()
}

func (s *certStore) close() {
	if s.stop != nil {
		close(s.stop)
		<-s.done
	}
}

func (s *certStore) changed() bool {
	now := s.stampFiles()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range now {
		if now[i] != s.stamps[i] {
			return true
		}
	}
	return false
}

// stampFiles stamps every file, certificate then key for each pair. A file is
// read through symbolic links, so a link switched to a new target (as
// certbot and Kubernetes secret volumes do) counts as a change.
func (s *certStore) stampFiles() []fileStamp {
	stamps := make([]fileStamp, 0, 2*len(s.files))
	for _, f := range s.files {
		for _, name := range []string{f.CertFile, f.KeyFile} {
			data, err := os.ReadFile(name)
			if err != nil {
				stamps = append(stamps, fileStamp{missing: true})
				continue
			}
			stamps = append(stamps, fileStamp{sum: sha256.Sum256(data)})
		}
	}
	return stamps
}

// loadCertSet loads every pair; the first becomes the default.
func loadCertSet(files []CertificateFiles) (*certSet, error) {
	set := &certSet{byName: map[string][]*tls.Certificate{}}
	for _, f := range files {
		c, err := loadPair(f)
		if err != nil {
			return nil, err
		}
		set.certs = append(set.certs, c)
		for _, name := range certNames(c.Leaf) {
			name = strings.ToLower(name)
			set.byName[name] = append(set.byName[name], c)
		}
	}
	set.def = set.certs[0]
	return set, nil
}

// loadPair reads one certificate and key. Its errors name the file at fault:
// a certificate file that holds no certificate, a key file that holds no key
// or a key that does not belong to the certificate.
func loadPair(f CertificateFiles) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(f.CertFile)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate %q: %w", f.CertFile, pathErr(err))
	}
	if err := checkCertificatePEM(certPEM); err != nil {
		return nil, fmt.Errorf("TLS certificate %q: %w", f.CertFile, err)
	}
	keyPEM, err := os.ReadFile(f.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS key %q: %w", f.KeyFile, pathErr(err))
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// The certificate parsed above, so what is wrong is the key.
		msg := strings.TrimPrefix(err.Error(), "tls: ")
		if strings.Contains(msg, "does not match") {
			return nil, fmt.Errorf("TLS key %q: does not match certificate %q", f.KeyFile, f.CertFile)
		}
		return nil, fmt.Errorf("TLS key %q: %s", f.KeyFile, msg)
	}
	if c.Leaf == nil { // set by X509KeyPair unless GODEBUG x509keypairleaf=0
		if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return nil, fmt.Errorf("TLS certificate %q: %w", f.CertFile, err)
		}
	}
	return &c, nil
}

// checkCertificatePEM reports what is wrong with a certificate file: no PEM
// at all, a key where the certificate should be, or a certificate that does
// not parse.
func checkCertificatePEM(data []byte) error {
	found, key := false, false
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			// A key beside the certificates is fine (a combined PEM
			// file, as HAProxy uses); a key alone is a mix-up.
			key = key || strings.HasSuffix(block.Type, "PRIVATE KEY")
			continue
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return err
		}
		found = true
	}
	switch {
	case found:
		return nil
	case key:
		return errors.New("holds a private key, not a certificate (certificate and key swapped?)")
	}
	return errors.New("no PEM certificate found")
}

// pathErr drops the operation and path from a file error: the caller names
// the file already.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// certNames returns the names a certificate serves for SNI: its DNS names,
// or its common name when it has none (as Go's own name index does).
func certNames(leaf *x509.Certificate) []string {
	if len(leaf.DNSNames) > 0 {
		return leaf.DNSNames
	}
	if leaf.Subject.CommonName != "" {
		return []string{leaf.Subject.CommonName}
	}
	return nil
}

// log records each certificate of the set under msg, and warns of any that
// clients will refuse today.
func (cs *certSet) log(log *slog.Logger, msg string) {
	now := time.Now()
	for _, c := range cs.certs {
		leaf := c.Leaf
		log.Info(msg, "names", certNames(leaf), "expires", leaf.NotAfter.UTC().Format(time.DateOnly))
		switch {
		case now.After(leaf.NotAfter):
			log.Warn("TLS certificate has expired", "names", certNames(leaf),
				"expired", leaf.NotAfter.UTC().Format(time.RFC3339))
		case now.Before(leaf.NotBefore):
			log.Warn("TLS certificate is not valid yet", "names", certNames(leaf),
				"valid_from", leaf.NotBefore.UTC().Format(time.RFC3339))
		}
	}
}
