package node

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// IdentityFile is the name of the server's key file inside the data folder.
const IdentityFile = "identity.pem"

// ErrIdentity is wrapped by every identity-key error.
var ErrIdentity = errors.New("node: identity key")

// LoadOrCreateIdentity returns the server's Ed25519 key from dir/identity.pem,
// creating it (mode 0600, PKCS#8 PEM) on first start. The key is the
// server's identity in the federation: its libp2p peer ID and the signer of
// every event it originates, so losing it means starting over as a new
// server. A key file readable by group or others is refused.
func LoadOrCreateIdentity(dir string) (ed25519.PrivateKey, bool, error) {
	path := filepath.Join(dir, IdentityFile)
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		info, err := os.Stat(path)
		if err != nil {
			return nil, false, fmt.Errorf("%w: %v", ErrIdentity, err)
		}
		if info.Mode().Perm()&0o077 != 0 {
			return nil, false, fmt.Errorf("%w: %s is readable by others (mode %v); run: chmod 600 %s", ErrIdentity, path, info.Mode().Perm(), path)
		}
		key, err := parseIdentity(data)
		if err != nil {
			return nil, false, fmt.Errorf("%w: %s: %v", ErrIdentity, path, err)
		}
		return key, false, nil
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, false, fmt.Errorf("%w: create data folder: %v", ErrIdentity, err)
		}
		_, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, false, fmt.Errorf("%w: generate: %v", ErrIdentity, err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, false, fmt.Errorf("%w: encode: %v", ErrIdentity, err)
		}
		pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
		// Write to a temporary file and rename, so a crash never leaves half a key.
		tmp := path + ".tmp"
		if err := writeFileSync(tmp, pemBytes, 0o600); err != nil {
			return nil, false, fmt.Errorf("%w: write: %v", ErrIdentity, err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return nil, false, fmt.Errorf("%w: write: %v", ErrIdentity, err)
		}
		return key, true, nil
	default:
		return nil, false, fmt.Errorf("%w: %v", ErrIdentity, err)
	}
}

func parseIdentity(data []byte) (ed25519.PrivateKey, error) {
	block, rest := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("not a PEM \"PRIVATE KEY\" block")
	}
	if len(rest) != 0 && len(trimSpace(rest)) != 0 {
		return nil, errors.New("trailing data after the PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key is %T, want an Ed25519 key", k)
	}
	return key, nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == '\n' || b[0] == '\r' || b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}

func writeFileSync(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
