package main

import (
	"os"
	"testing"
	"time"
)

func TestParseH2load(t *testing.T) {
	out, err := os.ReadFile("testdata/h2load-ok.txt")
	if err != nil {
		t.Fatal(err)
	}
	r, err := parseH2load(out)
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 10993 || r.Errors != 0 || r.Non2xx != 0 || r.RPS < 10000 || r.Seconds < 0.9 || r.Seconds > 1.1 {
		t.Errorf("parsed %+v", r)
	}

	out, err = os.ReadFile("testdata/h2load-refused.txt")
	if err != nil {
		t.Fatal(err)
	}
	if r, err = parseH2load(out); err != nil || r.Requests != 0 {
		t.Errorf("refused: %+v %v, want no requests and no parse error", r, err)
	}
	if _, err := parseH2load([]byte("h2load: command not understood")); err == nil {
		t.Error("garbage parsed")
	}
}

func TestH2loadPercentiles(t *testing.T) {
	var log []byte
	for i := 1; i <= 100; i++ {
		log = append(log, []byte("1795601147424333\t200\t"+itoa(i*100)+"\n")...)
	}
	log = append(log, []byte("garbage\n")...)
	p50, p99, most := h2loadPercentiles(log)
	if p50 != 5100*time.Microsecond || p99 != 10000*time.Microsecond || most != 10000*time.Microsecond {
		t.Errorf("p50 %v p99 %v max %v", p50, p99, most)
	}
	if a, b, c := h2loadPercentiles(nil); a+b+c != 0 {
		t.Error("an empty log gave latencies")
	}
}

func itoa(n int) string {
	b := []byte{}
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

func TestWriteCertFiles(t *testing.T) {
	c, err := writeCertFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{c.certFile, c.keyFile, c.pemFile} {
		if st, err := os.Stat(f); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
}
