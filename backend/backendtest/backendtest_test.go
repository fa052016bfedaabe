package backendtest

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func get(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestKillAndRestart(t *testing.T) {
	s := Start(t, "")
	url := s.URL()
	port := url[strings.LastIndexByte(url, ':')+1:]
	if body, err := get(url + "/"); err != nil || body != "Backend server is running on port "+port {
		t.Fatalf("GET /: %q %v", body, err)
	}
	if _, err := get(url + "/health"); err != nil {
		t.Fatal(err)
	}
	if s.Hits() != 1 {
		t.Errorf("hits %d, want 1 (health checks are not hits)", s.Hits())
	}
	s.Kill()
	if _, err := get(url + "/"); err == nil {
		t.Fatal("a killed backend answered")
	}
	s.Kill() // again: nothing
	s.Restart()
	if s.URL() != url {
		t.Errorf("restarted on %s, want %s", s.URL(), url)
	}
	if body, err := get(url + "/"); err != nil || !strings.HasSuffix(body, port) {
		t.Fatalf("after restart: %q %v", body, err)
	}
	if s.Hits() != 2 {
		t.Errorf("hits %d, want 2 across the restart", s.Hits())
	}
}
