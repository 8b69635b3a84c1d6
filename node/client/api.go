package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// APIError is an error answer of the node's client API (docs/api.md,
// "Errors"): the HTTP status, the stable code and the server's message.
type APIError struct {
	Method, Path string
	Status       int
	Code         string // e.g. "unauthorized", "stale_parent"
	Message      string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("client: %s %s: %d %s: %s", e.Method, e.Path, e.Status, e.Code, e.Message)
}

// Unwrap lets callers match ErrServer with errors.Is.
func (e *APIError) Unwrap() error { return ErrServer }

// api talks to one node's client API with one device's token.
type api struct {
	base  string
	token string
	http  *http.Client
}

// do sends a request and decodes a JSON answer into out (if not nil).
func (a *api) do(ctx context.Context, method, path, contentType string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrUnreachable, a.base, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: %s %s: %v (is the node running? check the server URL given to register)", ErrUnreachable, method, a.base+path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("%w: %s %s: read answer: %v", ErrUnreachable, method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		ae := &APIError{Method: method, Path: path, Status: resp.StatusCode}
		var body struct {
			Error   string `json:"error"`
			Message string `json:"message"`
		}
		if json.Unmarshal(raw, &body) == nil && body.Error != "" {
			ae.Code, ae.Message = body.Error, body.Message
		} else {
			ae.Code, ae.Message = "http", strings.TrimSpace(string(raw))
		}
		return ae
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%w: %s %s: answer is not the expected JSON: %v", ErrServer, method, path, err)
		}
	}
	return nil
}

func (a *api) postJSON(ctx context.Context, path string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return a.do(ctx, http.MethodPost, path, "application/json", b, out)
}

func (a *api) get(ctx context.Context, path string, out any) error {
	return a.do(ctx, http.MethodGet, path, "", nil, out)
}

// isCode reports whether err is an API error with the given code.
func isCode(err error, code string) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == code
}

// Wire shapes of the API (docs/api.md).

type registerReq struct {
	User              string `json:"user"`
	Device            string `json:"device"`
	SignatureKey      []byte `json:"signature_key"`
	RegistrationToken string `json:"registration_token,omitempty"`
}

type registerResp struct {
	User      string `json:"user"`
	Device    string `json:"device"`
	UserURI   string `json:"user_uri"`
	DeviceURI string `json:"device_uri"`
	Token     string `json:"token"`
}

type serverInfo struct {
	ServerName string   `json:"server_name"`
	ServerID   string   `json:"server_id"`
	PeerID     string   `json:"peer_id"`
	P2PAddrs   []string `json:"p2p_addrs"`
}

type claimResp struct {
	User    string `json:"user"`
	Status  string `json:"status"`
	Clients []struct {
		Client     string `json:"client"`
		Status     string `json:"status"`
		KeyPackage []byte `json:"key_package"`
	} `json:"clients"`
}

type serverJSON struct {
	ServerID string `json:"server_id"`
	Domain   string `json:"domain"`
}

type submitResp struct {
	Room   string `json:"room"`
	Event  string `json:"event"`
	Cursor uint64 `json:"cursor"`
}

type changeJSON struct {
	Component uint16 `json:"component"`
	Update    []byte `json:"update"`
}

type commitReq struct {
	Parent    string       `json:"parent"`
	Commit    []byte       `json:"commit"`
	Changes   []changeJSON `json:"changes"`
	Welcome   []byte       `json:"welcome,omitempty"`
	GroupInfo []byte       `json:"group_info,omitempty"` // the first commit: the epoch-0 GroupInfo
}

// streamLine is one line of GET /v1/stream: an event, a heartbeat, or an
// order line of the ordering layer.
type streamLine struct {
	Type    string       `json:"type"`
	Cursor  uint64       `json:"cursor"`
	Room    string       `json:"room,omitempty"`
	Event   string       `json:"event,omitempty"`
	Kind    string       `json:"kind,omitempty"`
	Origin  string       `json:"origin,omitempty"`
	TS      int64        `json:"ts,omitempty"`
	Raw     []byte       `json:"raw,omitempty"`
	Changes []changeJSON `json:"changes,omitempty"`

	// Order lines (type "order").
	Tip           string   `json:"tip,omitempty"`
	Certified     string   `json:"certified,omitempty"`
	Undone        []string `json:"undone,omitempty"`
	Applied       []string `json:"applied,omitempty"`
	RetainUntilMS int64    `json:"retain_until_ms,omitempty"`
}

type orderJSON struct {
	Room      string   `json:"room"`
	Tip       string   `json:"tip"`
	Certified string   `json:"certified"`
	Canonical []string `json:"canonical"`
}
