package p2p

import (
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// ErrNotEd25519 is returned when a peer ID does not embed an Ed25519 public
// key. Rhizome servers are identified by their Ed25519 key, so any other key
// type cannot be a Rhizome server.
var ErrNotEd25519 = errors.New("p2p: peer ID is not an Ed25519 server key")

// PrivKey converts a server's Ed25519 private key into the libp2p form that
// [NewHost] uses as the host identity.
func PrivKey(key ed25519.PrivateKey) (crypto.PrivKey, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("p2p: server key has %d bytes, want %d", len(key), ed25519.PrivateKeySize)
	}
	k, err := crypto.UnmarshalEd25519PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("p2p: server key: %w", err)
	}
	return k, nil
}

// PeerID returns the libp2p peer ID of the server whose Ed25519 public key is
// pub. The ID embeds the key (identity multihash), so peer ID and server
// identity are interchangeable without any lookup.
func PeerID(pub ed25519.PublicKey) (peer.ID, error) {
	k, err := crypto.UnmarshalEd25519PublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("p2p: server public key: %w", err)
	}
	return peer.IDFromPublicKey(k)
}

// ServerKey extracts the server's Ed25519 public key from its peer ID. It
// fails with [ErrNotEd25519] for peer IDs of any other key type.
func ServerKey(id peer.ID) (ed25519.PublicKey, error) {
	k, err := id.ExtractPublicKey()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotEd25519, err)
	}
	if k.Type() != crypto.Ed25519 {
		return nil, ErrNotEd25519
	}
	raw, err := k.Raw()
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, ErrNotEd25519
	}
	return ed25519.PublicKey(raw), nil
}
