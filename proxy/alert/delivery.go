package alert

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// maxBackoff caps the wait between two tries of one alert.
const maxBackoff = 30 * time.Second

// deliverAll posts s's alerts one at a time, in order, until its queue is
// closed and empty.
func (n *Notifier) deliverAll(s *sink) {
	defer n.wg.Done()
	for ev := range s.queue {
		n.deliver(s, ev)
	}
}

// deliver posts one alert, retrying with exponential backoff for up to
// RetryFor while the failure may pass (network errors, 429, 5xx). Whatever
// becomes of it is logged unless it succeeds.
func (n *Notifier) deliver(s *sink, ev Event) {
	body, err := n.cfg.Format.encode(ev)
	if err != nil {
		n.log.Error("alert not sent: cannot encode it", "webhook", s.shown, "error", err)
		return
	}
	giveUp := time.Now().Add(n.cfg.RetryFor)
	wait := n.cfg.Backoff
	for attempt := 1; ; attempt++ {
		err := n.post(s.url, body)
		if err == nil {
			return
		}
		var pe *permanentError
		if errors.As(err, &pe) || time.Now().Add(wait).After(giveUp) {
			n.log.Warn("alert not delivered", "webhook", s.shown, "event", ev.Event,
				"backend", ev.Backend, "state", ev.State, "attempts", attempt, "error", err)
			return
		}
		n.log.Debug("alert delivery failed; retrying", "webhook", s.shown, "attempt", attempt,
			"retry_in", wait, "error", err)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-n.ctx.Done():
			t.Stop()
			n.log.Warn("alert not delivered: shutting down", "webhook", s.shown, "event", ev.Event,
				"backend", ev.Backend, "state", ev.State, "attempts", attempt, "error", err)
			return
		}
		wait = min(2*wait, maxBackoff)
	}
}

// permanentError is a failure that retrying will not fix, such as the
// webhook refusing the alert itself (a 4xx other than 429).
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func (n *Notifier) post(url string, body []byte) error {
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return &permanentError{err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", n.cfg.UserAgent)
	resp, err := n.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) //nolint:errcheck // only to reuse the connection
	resp.Body.Close()
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusTooManyRequests || code >= 500:
		return fmt.Errorf("webhook answered %d", code)
	default:
		return &permanentError{fmt.Errorf("webhook answered %d", code)}
	}
}
