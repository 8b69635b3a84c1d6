package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/rhizome-chat/rhizome/clientapi"
)

// Allow lets user (a name on this device's server, or a user URI) claim
// this user's one-time KeyPackages, so that an invitation from them uses a
// fresh KeyPackage instead of the last-resort one. Users who share a room
// with this user need no consent. It returns the users now allowed.
func (c *Client) Allow(ctx context.Context, user string) ([]string, error) {
	a, user, err := c.consentTarget(user)
	if err != nil {
		return nil, err
	}
	var out clientapi.Consents
	if err := a.postJSON(ctx, "/v1/consent", clientapi.ConsentRequest{User: user}, &out); err != nil {
		return nil, err
	}
	return out.Allowed, nil
}

// Disallow withdraws a consent given with [Client.Allow]. It returns the
// users still allowed.
func (c *Client) Disallow(ctx context.Context, user string) ([]string, error) {
	a, user, err := c.consentTarget(user)
	if err != nil {
		return nil, err
	}
	var out clientapi.Consents
	if err := a.do(ctx, http.MethodDelete, "/v1/consent?user="+url.QueryEscape(user), "", nil, &out); err != nil {
		return nil, err
	}
	return out.Allowed, nil
}

// Allowed returns the users this user has allowed.
func (c *Client) Allowed(ctx context.Context) ([]string, error) {
	c.mu.Lock()
	if c.id == nil {
		c.mu.Unlock()
		return nil, ErrNotRegistered
	}
	a := c.api()
	c.mu.Unlock()
	var out clientapi.Consents
	if err := a.get(ctx, "/v1/consent", &out); err != nil {
		return nil, err
	}
	return out.Allowed, nil
}

// consentTarget returns the API and the normalized user URI for a consent
// call.
func (c *Client) consentTarget(user string) (*api, string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.id == nil {
		return nil, "", ErrNotRegistered
	}
	user, err := c.normalizeUser(user)
	if err != nil {
		return nil, "", err
	}
	return c.api(), user, nil
}
