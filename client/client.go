package client

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/rhizome-chat/rhizome/clientapi"
	"github.com/rhizome-chat/rhizome/mls"
)

// Suite is the MLS cipher suite of every group and KeyPackage this client
// makes: X25519, AES-128-GCM, SHA-256, Ed25519 (RFC 9420, Section 17.1).
const Suite = mls.MLS128DHKEMX25519AES128GCMSHA256Ed25519

// Errors callers branch on. They say what is wrong, not which command
// fixes it: a program using the library (the CLI) adds that.
var (
	// ErrNotRegistered means the store holds no device yet.
	ErrNotRegistered = errors.New("client: not registered: this directory holds no device yet")
	// ErrAlreadyRegistered means the store already holds a device.
	ErrAlreadyRegistered = errors.New("client: this directory already holds a registered device: a second device needs a directory of its own")
	// ErrStore wraps a failure of the local store.
	ErrStore = errors.New("client: local store")
	// ErrUnreachable wraps a network failure talking to the node.
	ErrUnreachable = errors.New("client: node unreachable")
	// ErrServer is matched by every *APIError.
	ErrServer = errors.New("client: node refused the request")
	// ErrUnknownRoom means the client holds no state for the room.
	ErrUnknownRoom = errors.New("client: unknown room: this device holds no state for it (its invitation may not have arrived yet)")
	// ErrNotJoined means the room is known but this device has no MLS
	// group for it yet (its Welcome has not been processed).
	ErrNotJoined = errors.New("client: not joined to the room's MLS group yet: the invitation has not been processed")
	// ErrBadInput means an argument is malformed.
	ErrBadInput = errors.New("client: bad input")
	// ErrNoKeyPackages means an invited user has no device with a usable
	// KeyPackage.
	ErrNoKeyPackages = errors.New("client: the user has no KeyPackages: they must register a device first")
	// ErrUnknownUser means the invited user does not exist on its server.
	ErrUnknownUser = errors.New("client: no such user on its server")
	// ErrUnknownMessage means a reply, reaction, edit or delete names a
	// message this device has not seen.
	ErrUnknownMessage = errors.New("client: unknown message ID: this device neither sent nor received it")
	// ErrNoServer means an invited user's domain has no server in the
	// room yet and no server was given (InviteOptions).
	ErrNoServer = errors.New("client: the room has no server for the user's domain yet")
	// ErrLeft means the device has left or was removed from the room.
	ErrLeft = errors.New("client: this device is no longer a member of the room")
	// ErrCommitLost means an own commit did not become canonical and
	// could not be rebuilt on the new tip.
	ErrCommitLost = errors.New("client: commit lost to a concurrent one: retry the operation")
	// ErrCommitRefused means another member's commit, canonical by the
	// node's order, failed the checks servers run (MLS authentication in
	// the current epoch, the sender the event names, room policy): the
	// device does not process it and its room stays at its epoch.
	ErrCommitRefused = errors.New("client: commit refused")
)

// Options tune a Client; the zero value is fine.
type Options struct {
	// HTTP is the HTTP client (default: one with no overall timeout, as the
	// stream is long-lived).
	HTTP *http.Client
	// Rand is the randomness source (default crypto/rand). Tests may pass a
	// seeded reader.
	Rand io.Reader
	// Now is the clock (default time.Now).
	Now func() time.Time
	// RetainFor is how long the secrets of an undone or superseded epoch
	// are kept to decrypt late messages when the order line gives no
	// deadline (default 10 minutes).
	RetainFor time.Duration
	// WaitTimeout bounds how long an operation waits for its own event to
	// come back on the stream (default 30 s).
	WaitTimeout time.Duration
}

// Client is one device: its keys, its MLS groups and its local store.
// All methods are safe for concurrent use.
type Client struct {
	dir   string
	opts  Options
	st    *store
	rand  io.Reader
	now   func() time.Time
	http  *http.Client
	mu    sync.Mutex // guards everything below and serializes processing
	id    *identity
	sig   mls.SignaturePrivateKey
	rooms map[string]*room
	// cursor is the last stream line processed (persisted with its effects).
	cursor uint64
	// qseq numbers the delivery queue; wake signals Sync.
	qseq uint64
	wake chan struct{}
	// noJoin lists, per room, the commits whose Welcome must not be joined
	// from again: a rejoin after our join was undone reads the room's
	// history, which still holds the undone commit (and, for a last-resort
	// KeyPackage, a Welcome we can still open); joining from it again would
	// bring back the very state that made us rejoin.
	noJoin map[string]map[string]bool
	// Counters for Stats.
	delivered, resent, reorgs int
	skipped                   []string
}

// identity is the registered device, persisted under m/ident.
type identity struct {
	Server    string `json:"server"`
	User      string `json:"user"`
	Device    string `json:"device"`
	UserURI   string `json:"user_uri"`
	DeviceURI string `json:"device_uri"`
	Token     string `json:"token"`
	Signature []byte `json:"signature_key"` // private key bytes (seed)
}

// Open opens (creating if needed) the device state in dir. The directory
// is created with mode 0700; the private keys never leave it.
func Open(dir string, opts Options) (*Client, error) {
	st, err := openStore(dir)
	if err != nil {
		return nil, err
	}
	c := &Client{dir: dir, opts: opts, st: st, rand: opts.Rand, now: opts.Now, http: opts.HTTP, rooms: map[string]*room{}, noJoin: map[string]map[string]bool{}, wake: make(chan struct{}, 1)}
	if c.rand == nil {
		c.rand = rand.Reader
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.http == nil {
		c.http = &http.Client{}
	}
	if c.opts.RetainFor <= 0 {
		c.opts.RetainFor = 10 * time.Minute
	}
	if c.opts.WaitTimeout <= 0 {
		c.opts.WaitTimeout = 30 * time.Second
	}
	var id identity
	found, err := st.getJSON([]byte(keyIdent), &id)
	if err != nil {
		st.close()
		return nil, err
	}
	if found {
		if err := c.setIdentity(&id); err != nil {
			st.close()
			return nil, err
		}
		if err := c.loadRooms(); err != nil {
			st.close()
			return nil, err
		}
		if c.cursor, err = st.cursor(); err != nil {
			st.close()
			return nil, err
		}
		err = st.scan(pfxQueue, func(k, _ []byte) error {
			c.qseq = binary.BigEndian.Uint64(k[len(pfxQueue):])
			return nil
		})
		if err != nil {
			st.close()
			return nil, err
		}
	}
	return c, nil
}

// Close closes the local store.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st.close()
}

func (c *Client) setIdentity(id *identity) error {
	sig, err := Suite.NewSignaturePrivateKey(id.Signature)
	if err != nil {
		return fmt.Errorf("%w: stored signature key: %v", ErrStore, err)
	}
	c.id, c.sig = id, sig
	return nil
}

func (c *Client) api() *api {
	a := &api{http: c.http}
	if c.id != nil {
		a.base, a.token = c.id.Server, c.id.Token
	}
	return a
}

// Device describes the registered device.
type Device struct {
	Server    string `json:"server"`
	User      string `json:"user"`
	Device    string `json:"device"`
	UserURI   string `json:"user_uri"`
	DeviceURI string `json:"device_uri"`
}

// Whoami returns the registered device, or ErrNotRegistered.
func (c *Client) Whoami() (Device, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.id == nil {
		return Device{}, ErrNotRegistered
	}
	return Device{Server: c.id.Server, User: c.id.User, Device: c.id.Device, UserURI: c.id.UserURI, DeviceURI: c.id.DeviceURI}, nil
}

// normalizeServer checks a server URL and strips a trailing slash.
func normalizeServer(server string) (string, error) {
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%w: server %q is not an http(s) URL: give the node's API address, e.g. http://127.0.0.1:8600", ErrBadInput, server)
	}
	return strings.TrimRight(server, "/"), nil
}

// Register creates the user with this device as its first device on the
// node at server, makes a fresh signature key, stores everything and
// uploads KeyPackages (DefaultKeyPackages one-time and one last-resort).
func (c *Client) Register(ctx context.Context, server, user, device string) (Device, error) {
	return c.RegisterWithToken(ctx, server, user, device, "")
}

// RegisterWithToken is [Client.Register] on a node whose registration
// needs a token from its operator (api.registration "token"; the operator
// makes one with rhizome admin token create). An empty token is Register.
func (c *Client) RegisterWithToken(ctx context.Context, server, user, device, token string) (Device, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.id != nil {
		return Device{}, ErrAlreadyRegistered
	}
	base, err := normalizeServer(server)
	if err != nil {
		return Device{}, err
	}
	sig, pub, err := Suite.GenerateSignatureKeyPair(c.rand)
	if err != nil {
		return Device{}, fmt.Errorf("client: signature key: %w", err)
	}
	a := &api{base: base, http: c.http}
	var resp clientapi.Registered
	if err := a.postJSON(ctx, "/v1/register", clientapi.RegisterRequest{User: user, Device: device, SignatureKey: pub, RegistrationToken: token}, &resp); err != nil {
		if clientapi.HasCode(err, clientapi.CodeConflict) {
			return Device{}, fmt.Errorf("%w (user %q exists on %s: choose another --user)", err, user, base)
		}
		return Device{}, err
	}
	return c.adopt(ctx, base, resp, sig, "registered, but uploading KeyPackages failed, so nobody can invite this device yet (Client.UploadKeyPackages retries)")
}

// adopt stores the identity the server issued (resp) with the device's
// signature key sig as this store's device, then uploads its KeyPackages.
// If the upload fails the device exists; uploadFailed says what that means.
// c.mu is held.
func (c *Client) adopt(ctx context.Context, base string, resp clientapi.Registered, sig mls.SignaturePrivateKey, uploadFailed string) (Device, error) {
	id := &identity{Server: base, User: resp.User, Device: resp.Device, UserURI: resp.UserURI, DeviceURI: resp.DeviceURI, Token: resp.Token, Signature: sig.Bytes()}
	b := newBatch()
	b.putJSON([]byte(keyIdent), id)
	if err := c.st.commit(b); err != nil {
		return Device{}, err
	}
	if err := c.setIdentity(id); err != nil {
		return Device{}, err
	}
	if _, err := c.uploadKeyPackages(ctx, DefaultKeyPackages); err != nil {
		return Device{}, fmt.Errorf("%s: %w", uploadFailed, err)
	}
	return Device{Server: id.Server, User: id.User, Device: id.Device, UserURI: id.UserURI, DeviceURI: id.DeviceURI}, nil
}

// DefaultKeyPackages is how many one-time KeyPackages Register uploads.
const DefaultKeyPackages = 10

// Stats counts what this client did since Open.
type Stats struct {
	Delivered int `json:"delivered"` // messages delivered (after dedup)
	Resent    int `json:"resent"`    // own messages re-sent after a branch move
	Skipped   int `json:"skipped"`   // stream events not usable (see Skipped)
	Reorgs    int `json:"reorgs"`    // branch moves: epochs undone by the canonical order
}

// Stats returns the counters.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Stats{Delivered: c.delivered, Resent: c.resent, Skipped: len(c.skipped), Reorgs: c.reorgs}
}
