package proxy

import (
	"crypto/tls"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rishichirchi/Load-Balancee/internal/testpki"
)

// startReloadingProxy serves leaves from files it returns, checking them
// every interval, in front of one backend.
func startReloadingProxy(t *testing.T, interval time.Duration, leaves ...*testpki.Leaf) (*tlsProxy, []CertificateFiles, *logBuffer) {
	t.Helper()
	files := certFiles(t, leaves...)
	logs, log := newLogBuffer()
	tp := startTLSProxy(t, Config{
		Backends: []string{startBackend(t, "a").URL()},
		Health:   HealthConfig{Interval: -1},
		Logger:   log,
		TLS:      &TLSConfig{Certificates: files, ReloadInterval: interval},
	})
	return tp, files, logs
}

// TestCertificateReloadOnChange swaps the certificate new clients get when
// the files change, while a connection made before keeps working.
func TestCertificateReloadOnChange(t *testing.T) {
	ca := testpki.NewCA(t, "test CA")
	oldLeaf, newLeaf := ca.Issue(t, "localhost"), ca.Issue(t, "localhost")
	tp, files, logs := startReloadingProxy(t, 10*time.Millisecond, oldLeaf)
	oldSerial, newSerial := oldLeaf.Cert.SerialNumber.String(), newLeaf.Cert.SerialNumber.String()
	roots := ca.Pool()
	if got := servedSerial(t, tp.tlsAddr, "localhost", roots); got != oldSerial {
		t.Fatalf("served serial %s, want the first certificate's %s", got, oldSerial)
	}
	old := dialTLS(t, tp.tlsAddr, &tls.Config{ServerName: "localhost", RootCAs: roots})
	if status := requestOn(t, old, "localhost"); status != http.StatusOK {
		t.Fatalf("status %d", status)
	}

	testpki.WriteFile(t, files[0].KeyFile, newLeaf.KeyPEM)
	testpki.WriteFile(t, files[0].CertFile, newLeaf.CertPEM)
	waitFor(t, "new clients to get the new certificate", 5*time.Second, func() bool {
		return servedSerial(t, tp.tlsAddr, "localhost", roots) == newSerial
	})
	if status := requestOn(t, old, "localhost"); status != http.StatusOK {
		t.Errorf("connection made before the reload: status %d", status)
	}
	if got := old.ConnectionState().PeerCertificates[0].SerialNumber.String(); got != oldSerial {
		t.Errorf("old connection's certificate changed to %s", got)
	}
	if !logs.contains("TLS certificate reloaded") {
		t.Errorf("no reload line in the log:\n%s", logs)
	}
}

// TestCertificateReloadBrokenKeepsOld keeps serving the certificate in use
// when the new files do not load, logs why once, and takes the next good
// pair.
func TestCertificateReloadBrokenKeepsOld(t *testing.T) {
	ca := testpki.NewCA(t, "test CA")
	first, other, fixed := ca.Issue(t, "localhost"), ca.Issue(t, "localhost"), ca.Issue(t, "localhost")
	tp, files, logs := startReloadingProxy(t, 10*time.Millisecond, first)
	roots := ca.Pool()
	firstSerial := first.Cert.SerialNumber.String()

	// A certificate whose key is not there yet, as when a deployment
	// writes the certificate first.
	testpki.WriteFile(t, files[0].CertFile, other.CertPEM)
	waitFor(t, "the failed reload to be logged", 5*time.Second, func() bool {
		return logs.contains("TLS certificate reload failed")
	})
	if want := `does not match certificate \"` + files[0].CertFile; !logs.contains(want) {
		t.Errorf("the failure does not name the files (%s):\n%s", want, logs)
	}
	if got := servedSerial(t, tp.tlsAddr, "localhost", roots); got != firstSerial {
		t.Errorf("after a broken reload new clients get %s, want the old %s", got, firstSerial)
	}
	// Checked again and again, the same broken files are reported once.
	checks := tp.certs.checks.Load()
	waitFor(t, "more checks of the files", 5*time.Second, func() bool { return tp.certs.checks.Load() >= checks+3 })
	if n := strings.Count(logs.String(), "reload failed"); n != 1 {
		t.Errorf("the same broken files were reported %d times, want once", n)
	}

	// Explicit reloads of broken files fail with the reason, too.
	err := tp.ReloadCertificates()
	if err == nil || !strings.Contains(err.Error(), files[0].KeyFile) {
		t.Errorf("ReloadCertificates with a mismatched pair: %v", err)
	}
	testpki.WriteFile(t, files[0].CertFile, []byte("garbage"))
	if err := tp.ReloadCertificates(); err == nil || !strings.Contains(err.Error(), files[0].CertFile) {
		t.Errorf("ReloadCertificates with a garbage certificate: %v", err)
	}
	if got := servedSerial(t, tp.tlsAddr, "localhost", roots); got != firstSerial {
		t.Errorf("after broken reloads new clients get %s, want the old %s", got, firstSerial)
	}

	// The complete new pair is taken on the next change.
	testpki.WriteFile(t, files[0].KeyFile, fixed.KeyPEM)
	testpki.WriteFile(t, files[0].CertFile, fixed.CertPEM)
	waitFor(t, "the fixed pair to serve", 5*time.Second, func() bool {
		return servedSerial(t, tp.tlsAddr, "localhost", roots) == fixed.Cert.SerialNumber.String()
	})
}

// TestReloadCertificates reloads on demand (what SIGHUP does) with polling
// off, and only then.
func TestReloadCertificates(t *testing.T) {
	ca := testpki.NewCA(t, "test CA")
	a1, b1, b2 := ca.Issue(t, "a.test"), ca.Issue(t, "b.test"), ca.Issue(t, "b.test")
	tp, files, _ := startReloadingProxy(t, -1, a1, b1)
	roots := ca.Pool()
	testpki.WriteFile(t, files[1].KeyFile, b2.KeyPEM)
	testpki.WriteFile(t, files[1].CertFile, b2.CertPEM)
	if got := servedSerial(t, tp.tlsAddr, "b.test", roots); got != b1.Cert.SerialNumber.String() {
		t.Errorf("with polling off the files were reloaded by themselves")
	}
	if err := tp.ReloadCertificates(); err != nil {
		t.Fatal(err)
	}
	if got := servedSerial(t, tp.tlsAddr, "b.test", roots); got != b2.Cert.SerialNumber.String() {
		t.Errorf("b.test after ReloadCertificates: serial %s, want %s", got, b2.Cert.SerialNumber)
	}
	if got := servedSerial(t, tp.tlsAddr, "a.test", roots); got != a1.Cert.SerialNumber.String() {
		t.Errorf("a.test after ReloadCertificates: serial %s, want the unchanged %s", got, a1.Cert.SerialNumber)
	}

	// A removed file fails the reload; the certificates stay.
	if err := os.Remove(files[0].KeyFile); err != nil {
		t.Fatal(err)
	}
	if err := tp.ReloadCertificates(); err == nil || !strings.Contains(err.Error(), files[0].KeyFile+`": no such file`) {
		t.Errorf("reload with a missing key: %v", err)
	}
	if got := servedSerial(t, tp.tlsAddr, "a.test", roots); got != a1.Cert.SerialNumber.String() {
		t.Errorf("a.test after a failed reload: serial %s", got)
	}
}
