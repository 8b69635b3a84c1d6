package client

// EpochAuthenticator returns the epoch_authenticator of the device's
// current epoch in the room (RFC 9420, Section 8.7): members who hold the
// same value share the same group state, so comparing it (out of band, or
// across devices in a test) confirms that they converged.
func (c *Client) EpochAuthenticator(rid RoomID) ([]byte, error) {
	room := string(rid)
	c.mu.Lock()
	defer c.mu.Unlock()
	r, err := c.joinedRoom(room)
	if err != nil {
		return nil, err
	}
	return r.g.EpochAuthenticator(), nil
}
