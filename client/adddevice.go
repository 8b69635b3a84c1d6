package client

import (
	"context"
	"fmt"

	"github.com/rhizome-chat/rhizome/clientapi"
)

// AddDevice registers this empty store as a new device of the user that
// existing (an open, registered device of the user) belongs to: it makes a
// fresh signature key, asks the user's home server for the new device with
// existing's token (POST /v1/devices), stores the new device's identity and
// uploads its KeyPackages. The new device has its own keys and token; it
// joins a room when a member adds it (inviting the user adds every device).
func (c *Client) AddDevice(ctx context.Context, existing *Client, device string) (Device, error) {
	if existing == c {
		return Device{}, fmt.Errorf("%w: the new device needs its own store", ErrBadInput)
	}
	existing.mu.Lock()
	if existing.id == nil {
		existing.mu.Unlock()
		return Device{}, ErrNotRegistered
	}
	a := existing.api()
	existing.mu.Unlock()

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.id != nil {
		return Device{}, ErrAlreadyRegistered
	}
	sig, pub, err := Suite.GenerateSignatureKeyPair(c.rand)
	if err != nil {
		return Device{}, fmt.Errorf("client: signature key: %w", err)
	}
	a.http = c.http
	var resp clientapi.Registered
	if err := a.postJSON(ctx, "/v1/devices", clientapi.DeviceRequest{Device: device, SignatureKey: pub}, &resp); err != nil {
		if clientapi.HasCode(err, clientapi.CodeConflict) {
			return Device{}, fmt.Errorf("%w (device %q exists: choose another device name)", err, device)
		}
		return Device{}, err
	}
	return c.adopt(ctx, a.base, resp, sig, "device added, but uploading KeyPackages failed, so nobody can invite it yet (Client.UploadKeyPackages retries)")
}
