package clientapi

// ServerInfo is the answer of GET /v1/server (docs/api.md, "Server"): what
// another self-hoster needs to put this server in a room or in
// p2p.bootstrap.
type ServerInfo struct {
	// ServerName is the server's domain, as in user URIs.
	ServerName string `json:"server_name"`
	// ServerID is the 64 hex digits of the server's Ed25519 key.
	ServerID string `json:"server_id"`
	// PeerID is the server's libp2p peer ID ("" without federation).
	PeerID string `json:"peer_id"`
	// P2PAddrs are the server's federation multiaddresses.
	P2PAddrs []string `json:"p2p_addrs"`
}

// RegisterRequest is the body of POST /v1/register (docs/api.md,
// "Accounts and devices").
type RegisterRequest struct {
	// User and Device follow the name grammar of docs/api.md,
	// "Conventions".
	User   string `json:"user"`
	Device string `json:"device"`
	// SignatureKey is the device's Ed25519 MLS signature public key (32
	// bytes).
	SignatureKey []byte `json:"signature_key"`
	// RegistrationToken is needed when the node's api.registration is
	// "token".
	RegistrationToken string `json:"registration_token,omitempty"`
}

// DeviceRequest is the body of POST /v1/devices (docs/api.md, "Accounts
// and devices"): a new device of the caller's user.
type DeviceRequest struct {
	// User, if given, must be the caller's user.
	User string `json:"user,omitempty"`
	// Device is the new device's name.
	Device string `json:"device"`
	// SignatureKey is the new device's Ed25519 MLS signature public key.
	SignatureKey []byte `json:"signature_key"`
}

// Registered is the answer of POST /v1/register and POST /v1/devices
// (docs/api.md, "Accounts and devices"): the device's names and its bearer
// token, which the node does not keep (only its hash).
type Registered struct {
	User      string `json:"user"`
	Device    string `json:"device"`
	UserURI   string `json:"user_uri"`
	DeviceURI string `json:"device_uri"`
	Token     string `json:"token"`
}

// Whoami is the answer of GET /v1/whoami (docs/api.md, "Accounts and
// devices").
type Whoami struct {
	User      string `json:"user"`
	Device    string `json:"device"`
	UserURI   string `json:"user_uri"`
	DeviceURI string `json:"device_uri"`
	// KeyPackages counts the device's one-time KeyPackages left.
	KeyPackages int `json:"key_packages"`
	// LastResort tells whether a last-resort KeyPackage is stored.
	LastResort bool `json:"last_resort"`
	// Cursor is the device's stored stream cursor (POST /v1/cursor).
	Cursor uint64 `json:"cursor"`
}
