package clientapi

// KeyPackageUpload is the body of POST /v1/keypackages (docs/api.md,
// "KeyPackages").
type KeyPackageUpload struct {
	// KeyPackages are MLSMessages of wire format mls_key_package.
	KeyPackages [][]byte `json:"key_packages"`
}

// KeyPackagesStored is the answer of POST /v1/keypackages (docs/api.md,
// "KeyPackages").
type KeyPackagesStored struct {
	// Stored counts the one-time KeyPackages of the upload.
	Stored int `json:"stored"`
	// LastResortReplaced tells whether the upload replaced the device's
	// last-resort KeyPackage.
	LastResortReplaced bool `json:"last_resort_replaced"`
	// KeyPackages counts the device's one-time KeyPackages now stored.
	KeyPackages int `json:"key_packages"`
	// LastResort tells whether a last-resort KeyPackage is stored.
	LastResort bool `json:"last_resort"`
}

// ClaimRequest is the body of POST /v1/keypackages/claim (docs/api.md,
// "KeyPackages").
type ClaimRequest struct {
	// User is the user URI whose devices' KeyPackages are claimed.
	User string `json:"user"`
	// Room, if given, is the room the user will be added to: the node
	// looks for a remote user's home server in its server list first.
	Room string `json:"room,omitempty"`
	// CipherSuites, if given, restricts the suites.
	CipherSuites []uint16 `json:"cipher_suites,omitempty"`
}

// Claimed is the answer of POST /v1/keypackages/claim (docs/api.md,
// "KeyPackages").
type Claimed struct {
	User string `json:"user"`
	// Status is MIMI's user code: success, partialSuccess,
	// noCompatibleMaterial, userUnknown, ...
	Status  string          `json:"status"`
	Clients []ClaimedClient `json:"clients"`
}

// ClaimedClient is one device of a [Claimed] answer.
type ClaimedClient struct {
	// Client is the device URI.
	Client string `json:"client"`
	// Status is success, keyMaterialExhausted or nothingCompatible.
	Status string `json:"status"`
	// KeyPackage is the MLSMessage KeyPackage handed out, when Status is
	// success.
	KeyPackage []byte `json:"key_package,omitempty"`
}

// ConsentRequest is the body of POST /v1/consent (docs/api.md,
// "KeyPackages").
type ConsentRequest struct {
	// User is the user URI allowed to claim one-time KeyPackages.
	User string `json:"user"`
}

// Consents is the answer of the consent endpoints (docs/api.md,
// "KeyPackages"): the users the caller's user allows.
type Consents struct {
	Allowed []string `json:"allowed"`
}
