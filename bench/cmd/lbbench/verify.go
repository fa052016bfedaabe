package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// verifyPeer sends each scenario's request through the peer a few times
// and checks the answers: status 200 and the body size the scenario asks
// for. With backend-server behind it, it also checks that a proxy spreads
// requests over both backends. A harness that measured 404s or a proxy
// stuck on one backend would report nonsense, so this runs before any load.
func (h *harness) verifyPeer(p *peer, scs []scenario) error {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableCompression: true}}
	defer client.CloseIdleConnections()
	// HTTP/2 over TLS only, trusting any certificate: the harness made it.
	var h2 http.Protocols
	h2.SetHTTP2(true)
	h2Client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DisableCompression: true, Protocols: &h2,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // the harness's own certificate
	}}
	defer h2Client.CloseIdleConnections()
	tlsClient := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DisableCompression: true,
		TLSClientConfig:    &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}}, //nolint:gosec // the harness's own certificate
	}}
	defer tlsClient.CloseIdleConnections()
	before, err := h.backendCounts(client)
	if err != nil {
		return err
	}
	const tries = 4
	sent := 0 // HTTP requests: a WebSocket goes to one backend only
	for _, sc := range scs {
		if sc.WebSocket {
			if _, err := wsEchoLoad("ws://"+p.addr+sc.Path(), 1, sc.RespSize, 100*time.Millisecond); err != nil {
				return fmt.Errorf("WebSocket echo on %s: %v", sc.Path(), err)
			}
			continue
		}
		url, c := "http://"+p.addr+sc.Path(), client
		if sc.secure() {
			if p.tlsAddr == "" {
				continue // not measured there
			}
			url, c = "https://"+p.tlsAddr+sc.Path(), tlsClient
			if sc.HTTP2 {
				c = h2Client
			}
		}
		for range tries {
			sent++
			req, err := http.NewRequest(sc.Method, url, bytes.NewReader(make([]byte, sc.BodySize)))
			if err != nil {
				return err
			}
			resp, err := c.Do(req)
			if err != nil {
				return fmt.Errorf("%s %s: %v", sc.Method, url, err)
			}
			want := 1
			if sc.HTTP2 {
				want = 2
			}
			if resp.ProtoMajor != want {
				resp.Body.Close()
				return fmt.Errorf("%s %s: answered over %s, want HTTP/%d", sc.Method, url, resp.Proto, want)
			}
			n, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK || n != int64(sc.RespSize) {
				return fmt.Errorf("%s %s: status %d, %d body bytes (%v); want 200 and %d bytes",
					sc.Method, sc.Path(), resp.StatusCode, n, err, sc.RespSize)
			}
		}
	}
	if before == nil || p.Name == peerDirect || sent < len(h.backends) {
		return nil
	}
	after, err := h.backendCounts(client)
	if err != nil {
		return err
	}
	for i := range after {
		if after[i] <= before[i] {
			return fmt.Errorf("backend %s got none of %d requests: not balanced", h.backends[i], sent)
		}
	}
	return nil
}

// backendCounts returns how many requests each backend-server has served,
// from its /stats; nil for backends without /stats (nginx).
func (h *harness) backendCounts(client *http.Client) ([]int64, error) {
	if h.backendKind != backendGo {
		return nil, nil
	}
	var counts []int64
	for _, b := range h.backends {
		resp, err := client.Get("http://" + b + "/stats")
		if err != nil {
			return nil, fmt.Errorf("backend %s /stats: %v", b, err)
		}
		var st struct {
			Requests int64 `json:"requests"`
		}
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("backend %s /stats: %v", b, err)
		}
		counts = append(counts, st.Requests)
	}
	return counts, nil
}
