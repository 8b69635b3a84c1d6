package client

import (
	"context"
	"fmt"
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
	var resp registerResp
	if err := a.postJSON(ctx, "/v1/devices", registerReq{Device: device, SignatureKey: pub}, &resp); err != nil {
		if isCode(err, "conflict") {
			return Device{}, fmt.Errorf("%w (device %q exists: choose another device name)", err, device)
		}
		return Device{}, err
	}
	id := &identity{Server: a.base, User: resp.User, Device: resp.Device, UserURI: resp.UserURI, DeviceURI: resp.DeviceURI, Token: resp.Token, Signature: sig.Bytes()}
	b := newBatch()
	b.putJSON([]byte(keyIdent), id)
	if err := c.st.commit(b); err != nil {
		return Device{}, err
	}
	if err := c.setIdentity(id); err != nil {
		return Device{}, err
	}
	if _, err := c.uploadKeyPackages(ctx, DefaultKeyPackages); err != nil {
		return Device{}, fmt.Errorf("device added, but uploading KeyPackages failed (retry with rhizome keypackages): %w", err)
	}
	return Device{Server: id.Server, User: id.User, Device: id.Device, UserURI: id.UserURI, DeviceURI: id.DeviceURI}, nil
}
