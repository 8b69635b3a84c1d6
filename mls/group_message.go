package mls

import (
	"io"
)

// Application messages (RFC 9420, Sections 6.3 and 9).

// Send encrypts application data from this member as a PrivateMessage with
// the next key of its application ratchet. authenticatedData is sent in
// the clear but authenticated.
func (g *Group) Send(rand io.Reader, authenticatedData, data []byte) (*MLSMessage, error) {
	if g.inactive {
		return nil, ErrGroupInactive
	}
	if authenticatedData == nil {
		authenticatedData = []byte{}
	}
	pm, err := g.prot.ProtectApplication(rand, g.me, g.sig, authenticatedData, data)
	if err != nil {
		return nil, err
	}
	return &MLSMessage{Version: ProtocolVersionMLS10, WireFormat: WireFormatPrivateMessage, PrivateMessage: pm}, nil
}
