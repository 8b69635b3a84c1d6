package p2p

import (
	"context"
	"slices"
	"sync"

	"github.com/rhizome-chat/rhizome/dag"
)

// KeyPackageQuery is a directory request as the home server's
// [KeyPackageSource] sees it: the decoded [KeyPackageRequest] plus the
// authenticated requesting server.
type KeyPackageQuery struct {
	// Requester is the server that asked (authenticated by the transport).
	Requester dag.ServerID
	KeyPackageRequest
}

// KeyMaterial is a [KeyPackageSource]'s answer for one user.
type KeyMaterial struct {
	UserStatus UserCode
	UserURI    string
	Clients    []ClientKeyMaterial
}

// KeyPackageSource hands out the KeyPackages of a home server's users. The
// node implements it on top of its account store. Implementations must hand
// each one-time KeyPackage out at most once, also under concurrent calls,
// and fall back to the client's last-resort KeyPackage when the one-time
// ones run out. KeyPackages are opaque bytes to p2p.
type KeyPackageSource interface {
	// ClaimKeyPackages answers q, consuming the one-time KeyPackages it
	// returns. An error wrapping a [*DirectoryError] refuses the request
	// with its status (for example DirectoryRateLimited); any other error
	// is answered DirectoryInternal.
	ClaimKeyPackages(ctx context.Context, q KeyPackageQuery) (KeyMaterial, error)
}

// MemKeyPackages is an in-memory [KeyPackageSource] for tests and the
// simulator.
type MemKeyPackages struct {
	mu    sync.Mutex
	users map[string]*memUser
	// Consent, if set, decides consent: it returns UserSuccess to allow,
	// or UserNoConsent / UserNoConsentForRoom to refuse.
	Consent func(q KeyPackageQuery) UserCode
}

type memUser struct {
	deleted bool
	clients []*memClient // in the order added
}

type memClient struct {
	uri        string
	oneTime    []memKP
	lastResort *memKP
}

type memKP struct {
	suite uint16
	data  []byte
}

// NewMemKeyPackages returns an empty directory.
func NewMemKeyPackages() *MemKeyPackages {
	return &MemKeyPackages{users: make(map[string]*memUser)}
}

func (m *MemKeyPackages) client(user, client string) *memClient {
	u := m.users[user]
	if u == nil {
		u = &memUser{}
		m.users[user] = u
	}
	for _, c := range u.clients {
		if c.uri == client {
			return c
		}
	}
	c := &memClient{uri: client}
	u.clients = append(u.clients, c)
	return c
}

// Add stores a one-time KeyPackage of cipher suite suite for a user's client.
func (m *MemKeyPackages) Add(user, client string, suite uint16, kp []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.client(user, client)
	c.oneTime = append(c.oneTime, memKP{suite: suite, data: slices.Clone(kp)})
}

// SetLastResort sets a client's last-resort KeyPackage, handed out whenever
// no compatible one-time KeyPackage is left.
func (m *MemKeyPackages) SetLastResort(user, client string, suite uint16, kp []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.client(user, client).lastResort = &memKP{suite: suite, data: slices.Clone(kp)}
}

// DeleteUser marks a user deleted; requests then get UserDeleted.
func (m *MemKeyPackages) DeleteUser(user string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if u := m.users[user]; u != nil {
		u.deleted = true
		u.clients = nil
	}
}

// Remaining returns how many one-time KeyPackages a client has left.
func (m *MemKeyPackages) Remaining(user, client string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if u := m.users[user]; u != nil {
		for _, c := range u.clients {
			if c.uri == client {
				return len(c.oneTime)
			}
		}
	}
	return 0
}

// ClaimKeyPackages implements [KeyPackageSource] with MIMI's answer codes.
func (m *MemKeyPackages) ClaimKeyPackages(_ context.Context, q KeyPackageQuery) (KeyMaterial, error) {
	out := KeyMaterial{UserURI: q.TargetUser}
	if q.Protocol != MLS10 {
		out.UserStatus = UserIncompatibleProtocol
		return out, nil
	}
	if m.Consent != nil {
		if code := m.Consent(q); code != UserSuccess {
			out.UserStatus = code
			return out, nil
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	u := m.users[q.TargetUser]
	switch {
	case u == nil:
		out.UserStatus = UserUnknown
		return out, nil
	case u.deleted:
		out.UserStatus = UserDeleted
		return out, nil
	}
	ok := func(suite uint16) bool { return len(q.CipherSuites) == 0 || slices.Contains(q.CipherSuites, suite) }
	successes, incompatible := 0, 0
	for _, c := range u.clients {
		entry := ClientKeyMaterial{ClientURI: c.uri}
		i := slices.IndexFunc(c.oneTime, func(kp memKP) bool { return ok(kp.suite) })
		switch {
		case i >= 0:
			entry.Status, entry.KeyPackage = ClientSuccess, c.oneTime[i].data
			c.oneTime = slices.Delete(c.oneTime, i, i+1)
		case c.lastResort != nil && ok(c.lastResort.suite):
			entry.Status, entry.KeyPackage = ClientSuccess, slices.Clone(c.lastResort.data)
		case len(c.oneTime) > 0 || c.lastResort != nil:
			entry.Status = ClientNothingCompatible
			incompatible++
		default:
			entry.Status = ClientExhausted
		}
		if entry.Status == ClientSuccess {
			successes++
		}
		out.Clients = append(out.Clients, entry)
	}
	switch {
	case successes > 0 && successes == len(u.clients):
		out.UserStatus = UserSuccess
	case successes > 0:
		out.UserStatus = UserPartialSuccess
	default:
		// No client yielded anything. MIMI populates clients only for
		// success and partialSuccess, and may for noCompatibleMaterial.
		out.UserStatus = UserNoCompatibleMaterial
		if incompatible == 0 {
			out.Clients = nil
		}
	}
	return out, nil
}
