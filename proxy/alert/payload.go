package alert

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// Format is the shape of an alert's body.
type Format uint8

const (
	// FormatJSON posts an Event as a JSON object.
	FormatJSON Format = iota
	// FormatSlack posts {"text": "..."}, which Slack's incoming webhooks
	// (and Mattermost's, Rocket.Chat's, Discord's /slack endpoint) accept.
	FormatSlack
)

// ParseFormat reads "json" or "slack".
func ParseFormat(s string) (Format, error) {
	switch s {
	case "json":
		return FormatJSON, nil
	case "slack":
		return FormatSlack, nil
	}
	return 0, fmt.Errorf("alert format %q: want json or slack", s)
}

// String returns "json" or "slack".
func (f Format) String() string {
	if f == FormatSlack {
		return "slack"
	}
	return "json"
}

// Event is one alert, as posted in FormatJSON.
type Event struct {
	// Event is "backend" for a backend's change, "pool" for the pool
	// running out of backends or recovering.
	Event string `json:"event"`
	// Backend is the URL of the backend that changed; for a pool event, the
	// backend whose change caused it.
	Backend string `json:"backend"`
	// State is the new state: "up" or "down" for a backend, "unavailable"
	// or "available" for the pool. Previous is the state before.
	State    string `json:"state"`
	Previous string `json:"previous"`
	// Reason says why: the connect error or failed check that took a
	// backend down, "health check passed" for one that came back.
	Reason string `json:"reason"`
	// At is when the change happened, RFC 3339 with milliseconds, UTC.
	At string `json:"at"`
	// BackendsUp and BackendsTotal count the pool's backends after the change.
	BackendsUp    int `json:"backends_up"`
	BackendsTotal int `json:"backends_total"`
}

// Pool states.
const (
	PoolUnavailable = "unavailable"
	PoolAvailable   = "available"
)

const timeFormat = "2006-01-02T15:04:05.000Z07:00"

func backendEvent(c pool.StateChange) Event {
	reason := c.Reason
	if reason == "" && c.To == pool.StateUp {
		reason = "health check passed"
	}
	return Event{
		Event:         "backend",
		Backend:       c.Backend.URL(),
		State:         c.To.String(),
		Previous:      c.From.String(),
		Reason:        reason,
		At:            c.At.UTC().Format(timeFormat),
		BackendsUp:    c.Up,
		BackendsTotal: c.Total,
	}
}

// poolEvent returns the pool's alert for c, if c emptied the pool or
// brought its first backend back.
func poolEvent(c pool.StateChange) (Event, bool) {
	ev := Event{
		Event:         "pool",
		Backend:       c.Backend.URL(),
		At:            c.At.UTC().Format(timeFormat),
		BackendsUp:    c.Up,
		BackendsTotal: c.Total,
	}
	switch {
	case c.UpBefore > 0 && c.Up == 0:
		ev.State, ev.Previous = PoolUnavailable, PoolAvailable
		ev.Reason = "no backend available: " + c.Backend.URL() + " was the last one up"
	case c.UpBefore == 0 && c.Up > 0:
		ev.State, ev.Previous = PoolAvailable, PoolUnavailable
		ev.Reason = "recovered: " + c.Backend.URL() + " is up"
	default:
		return Event{}, false
	}
	return ev, true
}

// encode returns the POST body for ev.
func (f Format) encode(ev Event) ([]byte, error) {
	if f == FormatSlack {
		return json.Marshal(struct {
			Text string `json:"text"`
		}{slackText(ev)})
	}
	return json.Marshal(ev)
}

// slackText is one line a person reads at a glance in a chat channel.
func slackText(ev Event) string {
	var b strings.Builder
	at := ev.At
	if t, err := time.Parse(time.RFC3339, ev.At); err == nil {
		at = t.Format("2006-01-02 15:04:05 MST")
	}
	switch {
	case ev.Event == "pool" && ev.State == PoolUnavailable:
		fmt.Fprintf(&b, ":rotating_light: *No backend available*: all %d backends are down (last: `%s`)", ev.BackendsTotal, ev.Backend)
	case ev.Event == "pool":
		fmt.Fprintf(&b, ":white_check_mark: *Recovered*: `%s` is up, %d of %d backends available", ev.Backend, ev.BackendsUp, ev.BackendsTotal)
	case ev.State == pool.StateDown.String():
		fmt.Fprintf(&b, ":red_circle: Backend `%s` is *down* (was %s): %s. %d of %d backends up", ev.Backend, ev.Previous, ev.Reason, ev.BackendsUp, ev.BackendsTotal)
	default:
		fmt.Fprintf(&b, ":large_green_circle: Backend `%s` is *%s* (was %s). %d of %d backends up", ev.Backend, ev.State, ev.Previous, ev.BackendsUp, ev.BackendsTotal)
	}
	b.WriteString(" at " + at)
	return b.String()
}
