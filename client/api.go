package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/rhizome-chat/rhizome/clientapi"
)

// APIError is an error answer of the node's client API (docs/api.md,
// "Errors"): the HTTP status, the stable code and the server's message.
type APIError struct {
	Method, Path string
	Status       int
	// Code is the answer's error code, e.g. clientapi.CodeStaleParent;
	// empty when the answer was not a JSON error body (a proxy's page, say),
	// whose text is then the Message.
	Code    clientapi.ErrorCode
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("client: %s %s: %d %s: %s", e.Method, e.Path, e.Status, e.Code, e.Message)
}

// Unwrap lets callers match ErrServer with errors.Is.
func (e *APIError) Unwrap() error { return ErrServer }

// APICode returns the error's code (it is a [clientapi.Coded]), so that
// callers match codes with [clientapi.HasCode].
func (e *APIError) APICode() clientapi.ErrorCode { return e.Code }

// apiError turns an error answer into an APIError.
func apiError(method, path string, status int, body []byte) *APIError {
	ae := &APIError{Method: method, Path: path, Status: status}
	var eb clientapi.ErrorBody
	if json.Unmarshal(body, &eb) == nil && eb.Code != "" {
		ae.Code, ae.Message = eb.Code, eb.Message
	} else {
		ae.Message = strings.TrimSpace(string(body))
	}
	return ae
}

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
		return apiError(method, path, resp.StatusCode, raw)
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
