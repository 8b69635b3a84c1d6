package client

import (
	"context"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/rhizome-chat/rhizome/clientapi"
	"github.com/rhizome-chat/rhizome/mls"
)

// kpRecord is one KeyPackage this device uploaded, with the private keys it
// needs to join from a Welcome. One-time records are deleted when used.
type kpRecord struct {
	KeyPackage []byte `json:"key_package"` // MLSMessage, wire format mls_key_package
	InitPriv   []byte `json:"init_priv"`
	EncPriv    []byte `json:"enc_priv"`
	LastResort bool   `json:"last_resort"`
}

func (r *kpRecord) bundle(sig mls.SignaturePrivateKey) (*mls.KeyPackageBundle, error) {
	msg, err := mls.UnmarshalMLSMessage(r.KeyPackage)
	if err != nil || msg.KeyPackage == nil {
		return nil, fmt.Errorf("%w: stored KeyPackage does not decode: %v", ErrStore, err)
	}
	return &mls.KeyPackageBundle{KeyPackage: msg.KeyPackage, InitPriv: r.InitPriv, EncryptionKey: r.EncPriv, SigningKey: sig}, nil
}

// UploadKeyPackages makes n fresh one-time KeyPackages and a new last-resort
// one, stores their private keys, and uploads them. It returns how many
// one-time KeyPackages the server now holds for the device.
func (c *Client) UploadKeyPackages(ctx context.Context, n int) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.id == nil {
		return 0, ErrNotRegistered
	}
	if n < 0 || n > 200 {
		return 0, fmt.Errorf("%w: %d KeyPackages: give 0 to 200", ErrBadInput, n)
	}
	return c.uploadKeyPackages(ctx, n)
}

func (c *Client) uploadKeyPackages(ctx context.Context, n int) (int, error) {
	cred := mls.NewBasicCredential([]byte(c.id.DeviceURI))
	b := newBatch()
	var wire [][]byte
	for i := 0; i <= n; i++ {
		last := i == n
		kb, err := mls.NewKeyPackage(c.rand, Suite, c.sig, cred, &mls.KeyPackageOptions{
			LastResort: last,
			NotBefore:  c.now().Add(-time.Hour), // tolerate clock skew
			NotAfter:   c.now().Add(90 * 24 * time.Hour),
		})
		if err != nil {
			return 0, fmt.Errorf("client: KeyPackage: %w", err)
		}
		raw, err := (&mls.MLSMessage{Version: mls.ProtocolVersionMLS10, WireFormat: mls.WireFormatKeyPackage, KeyPackage: kb.KeyPackage}).Marshal()
		if err != nil {
			return 0, fmt.Errorf("client: KeyPackage: %w", err)
		}
		ref, err := kb.KeyPackage.Ref()
		if err != nil {
			return 0, fmt.Errorf("client: KeyPackage ref: %w", err)
		}
		b.putJSON([]byte(pfxKP+hex.EncodeToString(ref)), &kpRecord{KeyPackage: raw, InitPriv: kb.InitPriv, EncPriv: kb.EncryptionKey, LastResort: last})
		wire = append(wire, raw)
	}
	// Keys first: a KeyPackage the server hands out must be joinable.
	if err := c.st.commit(b); err != nil {
		return 0, err
	}
	var resp clientapi.KeyPackagesStored
	if err := c.api().postJSON(ctx, "/v1/keypackages", clientapi.KeyPackageUpload{KeyPackages: wire}, &resp); err != nil {
		return 0, err
	}
	return resp.KeyPackages, nil
}

// findKeyPackage returns the stored KeyPackage a Welcome is encrypted to.
func (c *Client) findKeyPackage(w *mls.Welcome) (key []byte, rec *kpRecord, err error) {
	for _, s := range w.Secrets {
		k := []byte(pfxKP + hex.EncodeToString(s.NewMember))
		var r kpRecord
		found, err := c.st.getJSON(k, &r)
		if err != nil {
			return nil, nil, err
		}
		if found {
			return k, &r, nil
		}
	}
	return nil, nil, nil
}
