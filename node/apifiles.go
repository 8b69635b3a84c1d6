package node

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/rhizome-chat/rhizome/node/httpapi"
)

// Files of the client API in the data folder, for rhizome admin.
const (
	// AdminTokenFile holds the admin bearer token (mode 0600), created at
	// start when missing.
	AdminTokenFile = httpapi.AdminTokenFile
	// APIAddrFile holds the client API's bound address, written at every
	// start, so that rhizome admin finds the node.
	APIAddrFile      = "api-addr"
	adminTokenPrefix = "rhzadm_"
)

// ErrAdminToken is wrapped by failures to load or create the admin token.
var ErrAdminToken = errors.New("node: admin token")

// loadOrCreateAdminToken returns the admin token of dir/admin-token,
// creating the file (mode 0600) when it is missing. A file readable by group
// or others, or holding anything but a token, is refused.
func loadOrCreateAdminToken(dir string) (string, error) {
	path := filepath.Join(dir, AdminTokenFile)
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		info, err := os.Stat(path)
		if err != nil {
			return "", fmt.Errorf("%w: %v", ErrAdminToken, err)
		}
		if info.Mode().Perm()&0o077 != 0 {
			return "", fmt.Errorf("%w: %s is readable by others (mode %v); run: chmod 600 %s", ErrAdminToken, path, info.Mode().Perm(), path)
		}
		tok := strings.TrimSpace(string(data))
		if !strings.HasPrefix(tok, adminTokenPrefix) || len(tok) < len(adminTokenPrefix)+32 {
			return "", fmt.Errorf("%w: %s does not hold an admin token; delete it and restart to get a new one", ErrAdminToken, path)
		}
		return tok, nil
	case errors.Is(err, fs.ErrNotExist):
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("%w: %v", ErrAdminToken, err)
		}
		tok := adminTokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
		tmp := path + ".tmp"
		if err := writeFileSync(tmp, []byte(tok+"\n"), 0o600); err != nil {
			return "", fmt.Errorf("%w: write: %v", ErrAdminToken, err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return "", fmt.Errorf("%w: write: %v", ErrAdminToken, err)
		}
		return tok, nil
	default:
		return "", fmt.Errorf("%w: %v", ErrAdminToken, err)
	}
}

// writeAPIAddr records the API's bound address for rhizome admin.
func writeAPIAddr(dir, addr string) error {
	path := filepath.Join(dir, APIAddrFile)
	if err := writeFileSync(path+".tmp", []byte(addr+"\n"), 0o600); err != nil {
		return fmt.Errorf("node: write %s: %w", path, err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return fmt.Errorf("node: write %s: %w", path, err)
	}
	return nil
}
