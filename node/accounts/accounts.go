package accounts

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"filippo.io/edwards25519"
	"github.com/dgraph-io/badger/v4"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rhizome-chat/rhizome/clientapi"
	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/mls"
	"github.com/rhizome-chat/rhizome/node/internal/apierror"
	"github.com/rhizome-chat/rhizome/node/internal/localdb"
	"github.com/rhizome-chat/rhizome/p2p"
)

// Account limits.
const (
	// MaxKeyPackagesPerDevice bounds the one-time KeyPackages stored per
	// device.
	MaxKeyPackagesPerDevice = 200
	// MaxKeyPackageSize bounds one KeyPackage (MIMI's directory answers
	// carry at most 16 KiB per client).
	MaxKeyPackageSize = 16 << 10
	tokenPrefix       = "rhz_"
)

// MaxNameLen bounds user and device names.
const MaxNameLen = 64

// nameRE is the grammar of user and device names (docs/api.md, "Names"):
// lowercase ASCII letters and digits, with '.', '_' or '-' only between two
// of them.
var nameRE = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*$`)

// validName reports whether s follows the name grammar.
func validName(s string) bool { return len(s) <= MaxNameLen && nameRE.MatchString(s) }

// userRecord and deviceRecord are the stored account records.
type userRecord struct {
	Created int64 `json:"created"`
}

type deviceRecord struct {
	SignatureKey []byte `json:"signature_key"`
	Created      int64  `json:"created"`
}

type tokenRecord struct {
	User   string `json:"user"`
	Device string `json:"device"`
}

// Key layout of the accounts in the node-local database (docs/operations.md,
// "What is stored where"):
//
//	u/<user>                     user record (JSON)
//	d/<user>/<device>            device record (JSON)
//	t/<sha256(token) hex>        token -> {user, device} (JSON); the token itself is never stored
//	k/<user>/<device>/<seq:8>    one-time KeyPackage (suite:2 || MLSMessage bytes)
//	l/<user>/<device>            last-resort KeyPackage (suite:2 || MLSMessage bytes)
//	s/kpseq                      KeyPackage counter
const (
	pfxUser       = "u/"
	pfxDevice     = "d/"
	pfxToken      = "t/"
	pfxKeyPackage = "k/"
	pfxLastResort = "l/"
)

// Registration modes (config api.registration).
const (
	RegistrationOpen   = "open"
	RegistrationToken  = "token"
	RegistrationClosed = "closed"
)

// Device is an authenticated device: its user, its name and the Ed25519
// MLS signature key it registered.
type Device struct {
	User, Device string
	SignatureKey []byte
}

// Config configures a Store.
type Config struct {
	DB *localdb.DB
	// Domain is the node's server_name: users are mimi://<Domain>/u/<name>.
	Domain string
	// RegMode is api.registration's effective mode (RegistrationOpen,
	// RegistrationToken or RegistrationClosed).
	RegMode string
	// Self is this server; Rooms tells which rooms it shares with whom
	// (for the consent of KeyPackage claims).
	Self  dag.ServerID
	Rooms RoomIndex
	// Log and Registry receive the claims' log lines and metric.
	Log      *slog.Logger
	Registry prometheus.Registerer
	// Now is the clock (time.Now if nil).
	Now func() time.Time
}

// Store is the home-server side of users: accounts, devices, bearer
// tokens (stored as SHA-256 hashes), KeyPackages and who may claim them,
// registration tokens and consent. It implements p2p.KeyPackageSource for
// the directory protocol.
type Store struct {
	db      *localdb.DB
	domain  string
	regMode string
	now     func() time.Time
	claims  *claimGuard // what a claim may get: limits, consent
}

// New returns the accounts of cfg.DB.
func New(cfg Config) *Store {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	a := &Store{db: cfg.DB, domain: cfg.Domain, regMode: cfg.RegMode, now: now}
	a.claims = newClaimGuard(cfg.Log, cfg.Self, cfg.Rooms, a, cfg.Registry)
	return a
}

// RegMode is the effective registration mode.
func (a *Store) RegMode() string { return a.regMode }

// UserURI returns the MIMI URI of a local user.
func (a *Store) UserURI(user string) string { return "mimi://" + a.domain + "/u/" + user }

// DeviceURI returns the MIMI client URI of a local device. It is the
// identity its MLS credentials must carry.
func (a *Store) DeviceURI(user, device string) string {
	return "mimi://" + a.domain + "/d/" + user + "/" + device
}

// LocalUser returns the user name of a user URI of this server.
func (a *Store) LocalUser(uri string) (string, bool) {
	name, ok := strings.CutPrefix(uri, "mimi://"+a.domain+"/u/")
	return name, ok && validName(name)
}

// CheckName checks a user or device name against the name grammar and says
// what is wrong.
func CheckName(what, s string) error {
	bad := func(format string, args ...any) error {
		return apierror.New(http.StatusBadRequest, clientapi.CodeBadRequest, "%s %q is not valid: %s", what, s, fmt.Sprintf(format, args...))
	}
	switch {
	case s == "":
		return apierror.New(http.StatusBadRequest, clientapi.CodeBadRequest, "%s is missing: give a name of 1 to %d characters a-z, 0-9, '.', '_' or '-'", what, MaxNameLen)
	case len(s) > MaxNameLen:
		return bad("%d bytes, at most %d", len(s), MaxNameLen)
	case strings.IndexFunc(s, func(r rune) bool { return r >= utf8.RuneSelf }) >= 0:
		return bad("names are ASCII only (a-z, 0-9, '.', '_', '-'), so that letters of other scripts that look alike (Cyrillic 'а', Greek 'ο', fullwidth forms) cannot imitate another name")
	case strings.ToLower(s) != s:
		return bad("use lowercase letters only, so that names differing in case cannot imitate each other")
	case !validName(s):
		return bad("use letters a-z and digits 0-9, with '.', '_' or '-' only between two of them (no leading, trailing or doubled separators, so 'alice.' cannot pass for 'alice')")
	}
	return nil
}

// CheckSignatureKey checks that k is an Ed25519 public key of the kind MLS
// signs with: 32 bytes that decode to a curve point outside the small
// subgroup (a small-order key would verify forged signatures).
func CheckSignatureKey(k []byte) error {
	if len(k) != ed25519.PublicKeySize {
		return apierror.New(http.StatusBadRequest, clientapi.CodeBadRequest,
			"signature_key must be the device's Ed25519 MLS signature public key, %d bytes in base64, got %d bytes", ed25519.PublicKeySize, len(k))
	}
	p, err := new(edwards25519.Point).SetBytes(k)
	if err != nil {
		return apierror.New(http.StatusBadRequest, clientapi.CodeBadRequest, "signature_key is not an Ed25519 public key: the 32 bytes are not a point of the curve")
	}
	if new(edwards25519.Point).MultByCofactor(p).Equal(edwards25519.NewIdentityPoint()) == 1 {
		return apierror.New(http.StatusBadRequest, clientapi.CodeBadRequest, "signature_key is a small-order Ed25519 point, which no key pair has: send the device's real public key")
	}
	return nil
}

// newToken returns a fresh secret token with the given prefix and its hash.
func newToken(prefix string) (token string, hash string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", err
	}
	token = prefix + base64.RawURLEncoding.EncodeToString(b[:])
	return token, tokenHash(token), nil
}

func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Register creates a user with its first device and returns the device's
// bearer token. The token is shown once; only its hash is stored. The
// registration mode decides: open, a registration token that the same
// transaction consumes, or closed.
func (a *Store) Register(user, device string, sigKey []byte, regToken string) (string, error) {
	switch a.regMode {
	case RegistrationClosed:
		return "", errRegistrationClosed
	case RegistrationToken:
		if regToken == "" {
			return "", errRegToken(false)
		}
	default:
		regToken = "" // open: a token given anyway is not consumed
	}
	return a.createDevice(user, device, sigKey, true, regToken)
}

// AddDevice adds a device to an existing user.
func (a *Store) AddDevice(user, device string, sigKey []byte) (string, error) {
	return a.createDevice(user, device, sigKey, false, "")
}

// createDevice creates a device (and with newUser its user), consuming
// regToken if not empty.
func (a *Store) createDevice(user, device string, sigKey []byte, newUser bool, regToken string) (string, error) {
	if err := CheckName("user", user); err != nil {
		return "", err
	}
	if err := CheckName("device", device); err != nil {
		return "", err
	}
	if err := CheckSignatureKey(sigKey); err != nil {
		return "", err
	}
	token, hash, err := newToken(tokenPrefix)
	if err != nil {
		return "", err
	}
	now := a.now().UnixMilli()
	err = a.db.Update(func(txn *badger.Txn) error {
		var u userRecord
		exists, err := localdb.GetJSON(txn, []byte(pfxUser+user), &u)
		if err != nil {
			return err
		}
		if newUser && exists {
			return apierror.New(http.StatusConflict, clientapi.CodeConflict, "user %q already exists; pick another name, or add a device with POST /v1/devices using a token of that user", user)
		}
		if regToken != "" {
			if err := consumeRegToken(txn, regToken, a.now()); err != nil {
				return err
			}
		}
		if !newUser && !exists {
			return apierror.New(http.StatusNotFound, clientapi.CodeNotFound, "user %q does not exist", user)
		}
		var d deviceRecord
		if ok, err := localdb.GetJSON(txn, []byte(pfxDevice+user+"/"+device), &d); err != nil {
			return err
		} else if ok {
			return apierror.New(http.StatusConflict, clientapi.CodeConflict, "device %q of user %q already exists; pick another device name", device, user)
		}
		if newUser {
			if err := localdb.SetJSON(txn, []byte(pfxUser+user), userRecord{Created: now}); err != nil {
				return err
			}
		}
		if err := localdb.SetJSON(txn, []byte(pfxDevice+user+"/"+device), deviceRecord{SignatureKey: sigKey, Created: now}); err != nil {
			return err
		}
		return localdb.SetJSON(txn, []byte(pfxToken+hash), tokenRecord{User: user, Device: device})
	})
	if err != nil {
		return "", err
	}
	return token, nil
}

// Authenticate maps a bearer token to its device.
func (a *Store) Authenticate(token string) (Device, error) {
	if !strings.HasPrefix(token, tokenPrefix) {
		return Device{}, apierror.New(http.StatusUnauthorized, clientapi.CodeUnauthorized,
			"malformed bearer token: send the %q... token that registration returned, as 'Authorization: Bearer <token>'", tokenPrefix)
	}
	var tr tokenRecord
	var dr deviceRecord
	err := a.db.View(func(txn *badger.Txn) error {
		ok, err := localdb.GetJSON(txn, []byte(pfxToken+tokenHash(token)), &tr)
		if err != nil {
			return err
		}
		if !ok {
			return apierror.New(http.StatusUnauthorized, clientapi.CodeUnauthorized, "unknown bearer token: register again or use a token of an existing device")
		}
		ok, err = localdb.GetJSON(txn, []byte(pfxDevice+tr.User+"/"+tr.Device), &dr)
		if err != nil {
			return err
		}
		if !ok {
			return apierror.New(http.StatusUnauthorized, clientapi.CodeUnauthorized, "the token's device no longer exists")
		}
		return nil
	})
	if err != nil {
		return Device{}, err
	}
	return Device{User: tr.User, Device: tr.Device, SignatureKey: dr.SignatureKey}, nil
}

// validKeyPackage decodes and checks one uploaded KeyPackage: an MLSMessage
// of wire format mls_key_package, both signatures valid, the credential a
// basic credential naming this device, signed with the device's key.
func (a *Store) validKeyPackage(dev Device, raw []byte, i int) (*mls.KeyPackage, error) {
	bad := func(format string, args ...any) error {
		return apierror.New(http.StatusBadRequest, clientapi.CodeBadKeyPackage, "key package %d: %s", i, fmt.Sprintf(format, args...))
	}
	if len(raw) > MaxKeyPackageSize {
		return nil, bad("%d bytes, at most %d", len(raw), MaxKeyPackageSize)
	}
	msg, err := mls.UnmarshalMLSMessage(raw)
	if err != nil {
		return nil, bad("not an MLSMessage: %v", err)
	}
	if msg.WireFormat != mls.WireFormatKeyPackage || msg.KeyPackage == nil {
		return nil, bad("wire format %d, want mls_key_package (5)", msg.WireFormat)
	}
	kp := msg.KeyPackage
	if err := kp.Verify(); err != nil {
		return nil, bad("signature: %v", err)
	}
	want := a.DeviceURI(dev.User, dev.Device)
	cred := kp.LeafNode.Credential
	if cred.CredentialType != mls.CredentialTypeBasic || string(cred.Identity) != want {
		return nil, bad("credential identity %q, want a basic credential with identity %q", cred.Identity, want)
	}
	if !bytes.Equal(kp.LeafNode.SignatureKey, dev.SignatureKey) {
		return nil, bad("signed with another key than the device's registered signature_key")
	}
	return kp, nil
}

func kpValue(suite uint16, raw []byte) []byte {
	return append(binary.BigEndian.AppendUint16(nil, suite), raw...)
}

// UploadKeyPackages validates and stores a device's KeyPackages: one-time
// ones are appended, a last-resort one (with the last_resort extension)
// replaces the previous. Either all are stored or none.
func (a *Store) UploadKeyPackages(dev Device, raws [][]byte) (oneTime int, lastResort bool, err error) {
	type kpIn struct {
		raw   []byte
		suite uint16
		last  bool
	}
	var in []kpIn
	for i, raw := range raws {
		kp, err := a.validKeyPackage(dev, raw, i)
		if err != nil {
			return 0, false, err
		}
		in = append(in, kpIn{raw, uint16(kp.CipherSuite), mls.IsLastResort(kp)})
	}
	prefix := pfxKeyPackage + dev.User + "/" + dev.Device + "/"
	err = a.db.Update(func(txn *badger.Txn) error {
		have := 0
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefix)})
		for it.Rewind(); it.Valid(); it.Next() {
			have++
		}
		it.Close()
		for _, k := range in {
			if k.last {
				lastResort = true
				if err := txn.Set([]byte(pfxLastResort+dev.User+"/"+dev.Device), kpValue(k.suite, k.raw)); err != nil {
					return err
				}
				continue
			}
			if have+oneTime >= MaxKeyPackagesPerDevice {
				return apierror.New(http.StatusConflict, clientapi.CodeConflict, "device already holds %d one-time key packages, the maximum; upload more after some are claimed", MaxKeyPackagesPerDevice)
			}
			n, err := localdb.Next(txn, "kpseq")
			if err != nil {
				return err
			}
			if err := txn.Set(append([]byte(prefix), localdb.U64(n)...), kpValue(k.suite, k.raw)); err != nil {
				return err
			}
			oneTime++
		}
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	return oneTime, lastResort, nil
}

// KeyPackageCount returns a device's remaining one-time KeyPackages and
// whether it has a last-resort one.
func (a *Store) KeyPackageCount(user, device string) (int, bool, error) {
	var n int
	var last bool
	err := a.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pfxKeyPackage + user + "/" + device + "/")})
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		it.Close()
		_, err := txn.Get([]byte(pfxLastResort + user + "/" + device))
		last = err == nil
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		return err
	})
	return n, last, err
}

// ClaimKeyPackages implements p2p.KeyPackageSource: for each device of the
// target user, one one-time KeyPackage of an accepted suite, consumed in the
// same transaction, else the last-resort one. One-time KeyPackages are
// handed out only with consent (claimGuard.admit: a shared room, or the
// target allowed the requester); otherwise only last-resort ones. A claim
// never makes this node join a room. Every claim is logged and counted.
func (a *Store) ClaimKeyPackages(_ context.Context, q p2p.KeyPackageQuery) (p2p.KeyMaterial, error) {
	out := p2p.KeyMaterial{UserURI: q.TargetUser}
	if q.Protocol != p2p.MLS10 {
		out.UserStatus = p2p.UserIncompatibleProtocol
		return out, nil
	}
	user, ok := a.LocalUser(q.TargetUser)
	if !ok {
		out.UserStatus = p2p.UserUnknown
		a.claims.record(q, ClaimNone, nil)
		return out, nil
	}
	oneTimeOK, err := a.claims.admit(q, q.TargetUser)
	if err != nil {
		a.claims.record(q, ClaimRefused, err)
		return p2p.KeyMaterial{}, err
	}
	accept := func(suite uint16) bool { return len(q.CipherSuites) == 0 || slices.Contains(q.CipherSuites, suite) }
	unknown := false
	oneTime := 0
	err = a.db.Update(func(txn *badger.Txn) error {
		out.Clients, oneTime = nil, 0
		var u userRecord
		ok, err := localdb.GetJSON(txn, []byte(pfxUser+user), &u)
		if err != nil {
			return err
		}
		if !ok {
			unknown = true
			return nil
		}
		var devices []string
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pfxDevice + user + "/")})
		for it.Rewind(); it.Valid(); it.Next() {
			devices = append(devices, string(it.Item().Key()[len(pfxDevice+user+"/"):]))
		}
		it.Close()
		for _, dev := range devices {
			entry := p2p.ClientKeyMaterial{ClientURI: a.DeviceURI(user, dev), Status: p2p.ClientExhausted}
			incompatible := false
			it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pfxKeyPackage + user + "/" + dev + "/"), PrefetchValues: true})
			for it.Rewind(); oneTimeOK && it.Valid(); it.Next() {
				v, err := it.Item().ValueCopy(nil)
				if err != nil {
					it.Close()
					return err
				}
				if !accept(binary.BigEndian.Uint16(v)) {
					incompatible = true
					continue
				}
				entry.Status, entry.KeyPackage = p2p.ClientSuccess, v[2:]
				if err := txn.Delete(it.Item().KeyCopy(nil)); err != nil {
					it.Close()
					return err
				}
				oneTime++
				break
			}
			it.Close()
			if entry.Status != p2p.ClientSuccess {
				item, err := txn.Get([]byte(pfxLastResort + user + "/" + dev))
				switch {
				case err == nil:
					v, err := item.ValueCopy(nil)
					if err != nil {
						return err
					}
					if accept(binary.BigEndian.Uint16(v)) {
						entry.Status, entry.KeyPackage = p2p.ClientSuccess, v[2:]
					} else {
						incompatible = true
					}
				case !errors.Is(err, badger.ErrKeyNotFound):
					return err
				}
			}
			if entry.Status != p2p.ClientSuccess && incompatible {
				entry.Status = p2p.ClientNothingCompatible
			}
			out.Clients = append(out.Clients, entry)
		}
		return nil
	})
	if err != nil {
		return p2p.KeyMaterial{}, err
	}
	if unknown {
		out.UserStatus = p2p.UserUnknown
		a.claims.record(q, ClaimNone, nil)
		return out, nil
	}
	successes, incompatible := 0, 0
	for _, c := range out.Clients {
		switch c.Status {
		case p2p.ClientSuccess:
			successes++
		case p2p.ClientNothingCompatible:
			incompatible++
		}
	}
	switch {
	case successes > 0 && successes == len(out.Clients):
		out.UserStatus = p2p.UserSuccess
	case successes > 0:
		out.UserStatus = p2p.UserPartialSuccess
	default:
		// No client yielded anything (as p2p.MemKeyPackages answers):
		// MIMI lists clients only for success and partialSuccess, and may
		// for noCompatibleMaterial.
		out.UserStatus = p2p.UserNoCompatibleMaterial
		if incompatible == 0 {
			out.Clients = nil
		}
	}
	switch {
	case oneTime > 0:
		a.claims.record(q, ClaimOneTime, nil)
	case successes > 0:
		a.claims.record(q, ClaimLastResort, nil)
	default:
		a.claims.record(q, ClaimNone, nil)
	}
	return out, nil
}
