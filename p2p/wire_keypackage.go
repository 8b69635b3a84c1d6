package p2p

import (
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/rhizome-chat/rhizome/internal/tlspl"
)

// KeyPackage directory bounds (docs/protocol.md, "KeyPackage directory").
const (
	// MaxURILen bounds every identity URI in the directory protocol.
	MaxURILen = 1024
	// MaxClients bounds the clients in one answer.
	MaxClients = 256
	// MaxKeyPackageSize bounds one KeyPackage (an MLSMessage, opaque here).
	MaxKeyPackageSize = 16 << 10
	// MaxCipherSuites bounds the acceptable cipher suites of a request.
	MaxCipherSuites = 64
	// maxRoomIDLen bounds the room identifier of a request.
	maxRoomIDLen = 256
)

// MLS10 is the MIMI Protocol value for MLS 1.0 (enum { reserved(0), mls10(1) }).
const MLS10 uint8 = 1

// UserCode is MIMI's KeyMaterialUserCode (draft-ietf-mimi-protocol, keyMaterial).
type UserCode uint8

// MIMI user answer codes.
const (
	UserSuccess              UserCode = 0
	UserPartialSuccess       UserCode = 1
	UserIncompatibleProtocol UserCode = 2
	UserNoCompatibleMaterial UserCode = 3
	UserUnknown              UserCode = 4
	UserNoConsent            UserCode = 5
	UserNoConsentForRoom     UserCode = 6
	UserDeleted              UserCode = 7
)

var userCodeNames = [...]string{"success", "partialSuccess", "incompatibleProtocol", "noCompatibleMaterial",
	"userUnknown", "noConsent", "noConsentForThisRoom", "userDeleted"}

// String returns the MIMI name of the code.
func (c UserCode) String() string {
	if int(c) < len(userCodeNames) {
		return userCodeNames[c]
	}
	return fmt.Sprintf("userCode(%d)", uint8(c))
}

// ClientCode is MIMI's KeyMaterialClientCode.
type ClientCode uint8

// MIMI client answer codes.
const (
	ClientSuccess           ClientCode = 0
	ClientExhausted         ClientCode = 1 // keyMaterialExhausted
	ClientNothingCompatible ClientCode = 2
)

var clientCodeNames = [...]string{"success", "keyMaterialExhausted", "nothingCompatible"}

// String returns the MIMI name of the code.
func (c ClientCode) String() string {
	if int(c) < len(clientCodeNames) {
		return clientCodeNames[c]
	}
	return fmt.Sprintf("clientCode(%d)", uint8(c))
}

// DirectoryStatus is the transport-level answer of the directory protocol,
// outside MIMI's codes: whether the request was processed at all.
type DirectoryStatus uint8

// Directory transport answer codes.
const (
	DirectoryOK          DirectoryStatus = 0
	DirectoryBadRequest  DirectoryStatus = 1
	DirectoryRateLimited DirectoryStatus = 2
	DirectoryBusy        DirectoryStatus = 3
	DirectoryInternal    DirectoryStatus = 4
)

var directoryStatusNames = [...]string{"ok", "bad_request", "rate_limited", "busy", "internal"}

// String returns the status name used in docs/protocol.md.
func (s DirectoryStatus) String() string {
	if int(s) < len(directoryStatusNames) {
		return directoryStatusNames[s]
	}
	return fmt.Sprintf("directoryStatus(%d)", uint8(s))
}

// KeyPackageRequest asks a user's home server for KeyPackages of all the
// user's clients. It follows MIMI's KeyMaterialRequest without the
// requester's signature: the requesting server is authenticated by the
// transport (its peer ID), and it answers for its users.
//
//	struct {
//	    uint8 protocol;                         // mls10(1)
//	    opaque requesting_user<V>;              // identity URI, <= 1024 bytes
//	    opaque target_user<V>;                  // identity URI, <= 1024 bytes
//	    opaque room_id<V>;                      // empty: not for a particular room
//	    uint16 acceptable_cipher_suites<V>;     // empty: any; <= 64, no duplicates
//	} KeyPackageRequest;
type KeyPackageRequest struct {
	Protocol       uint8
	RequestingUser string
	TargetUser     string
	Room           []byte
	CipherSuites   []uint16
}

// ClientKeyMaterial is one client's entry of an answer (MIMI's
// ClientKeyMaterial):
//
//	struct {
//	    ClientCode client_status;               // uint8
//	    opaque client_uri<V>;
//	    select (client_status) {
//	        case success:           opaque key_package<V>;   // MLSMessage, <= 16 KiB
//	        case nothingCompatible: optional<opaque capabilities<V>>;
//	        case keyMaterialExhausted: struct {};
//	    };
//	} ClientKeyMaterial;
type ClientKeyMaterial struct {
	Status     ClientCode
	ClientURI  string
	KeyPackage []byte // success only
	// Capabilities is the client's Capabilities encoding
	// (nothingCompatible only, optional).
	Capabilities []byte
}

// KeyPackageResponse is the answer (MIMI's KeyMaterialResponse inside a
// transport status):
//
//	struct {
//	    DirectoryStatus status;                 // uint8
//	    select (status) {
//	        case ok:
//	            uint8 protocol;
//	            UserCode user_status;           // uint8
//	            opaque user_uri<V>;
//	            ClientKeyMaterial clients<V>;   // <= 256
//	        default:
//	            opaque message<V>;              // diagnostic, <= 256 bytes
//	    };
//	} KeyPackageResponse;
type KeyPackageResponse struct {
	Status     DirectoryStatus
	Protocol   uint8
	UserStatus UserCode
	UserURI    string
	Clients    []ClientKeyMaterial
	Message    string
}

func (r *KeyPackageRequest) check() error {
	if len(r.RequestingUser) > MaxURILen || len(r.TargetUser) > MaxURILen || len(r.Room) > maxRoomIDLen {
		return fmt.Errorf("%w: identifier too long", ErrMalformedMessage)
	}
	if len(r.CipherSuites) > MaxCipherSuites {
		return fmt.Errorf("%w: %d cipher suites", ErrMalformedMessage, len(r.CipherSuites))
	}
	seen := make(map[uint16]bool, len(r.CipherSuites))
	for _, cs := range r.CipherSuites {
		if seen[cs] {
			return fmt.Errorf("%w: cipher suite %d twice", ErrMalformedMessage, cs)
		}
		seen[cs] = true
	}
	return nil
}

// Marshal encodes the request.
func (r *KeyPackageRequest) Marshal() ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	return tlspl.Marshal(func(b *cryptobyte.Builder) {
		b.AddUint8(r.Protocol)
		tlspl.AddOpaque(b, []byte(r.RequestingUser))
		tlspl.AddOpaque(b, []byte(r.TargetUser))
		tlspl.AddOpaque(b, r.Room)
		tlspl.AddVector(b, func(b *cryptobyte.Builder) {
			for _, cs := range r.CipherSuites {
				b.AddUint16(cs)
			}
		})
	})
}

// UnmarshalKeyPackageRequest decodes a request strictly.
func UnmarshalKeyPackageRequest(data []byte) (*KeyPackageRequest, error) {
	r := &KeyPackageRequest{}
	err := tlspl.Unmarshal(data, "p2p.KeyPackageRequest", func(s *cryptobyte.String) bool {
		var req, target []byte
		if !s.ReadUint8(&r.Protocol) || !tlspl.ReadOpaque(s, &req) || !tlspl.ReadOpaque(s, &target) ||
			!tlspl.ReadOpaque(s, &r.Room) {
			return false
		}
		r.RequestingUser, r.TargetUser = string(req), string(target)
		var suites cryptobyte.String
		if !tlspl.ReadVector(s, &suites) || len(suites)%2 != 0 {
			return false
		}
		for !suites.Empty() {
			var cs uint16
			suites.ReadUint16(&cs)
			r.CipherSuites = append(r.CipherSuites, cs)
		}
		return true
	})
	if err := decodeErr("keypackage request", nil, err); err != nil {
		return nil, err
	}
	if len(r.Room) == 0 {
		r.Room = nil
	}
	if err := r.check(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *KeyPackageResponse) check() error {
	if int(r.Status) >= len(directoryStatusNames) {
		return fmt.Errorf("%w: unknown directory status %d", ErrMalformedMessage, uint8(r.Status))
	}
	if r.Status != DirectoryOK {
		if len(r.Message) > maxStatusMessage || len(r.Clients) != 0 || r.UserURI != "" || r.Protocol != 0 || r.UserStatus != 0 {
			return fmt.Errorf("%w: refusal with a body", ErrMalformedMessage)
		}
		return nil
	}
	if r.Message != "" {
		return fmt.Errorf("%w: message on success", ErrMalformedMessage)
	}
	if int(r.UserStatus) >= len(userCodeNames) {
		return fmt.Errorf("%w: unknown user code %d", ErrMalformedMessage, uint8(r.UserStatus))
	}
	if len(r.UserURI) > MaxURILen || len(r.Clients) > MaxClients {
		return fmt.Errorf("%w: answer too large", ErrMalformedMessage)
	}
	for _, c := range r.Clients {
		if int(c.Status) >= len(clientCodeNames) || len(c.ClientURI) > MaxURILen {
			return fmt.Errorf("%w: bad client entry", ErrMalformedMessage)
		}
		switch c.Status {
		case ClientSuccess:
			if len(c.KeyPackage) == 0 || len(c.KeyPackage) > MaxKeyPackageSize || c.Capabilities != nil {
				return fmt.Errorf("%w: success entry without a KeyPackage", ErrMalformedMessage)
			}
		case ClientNothingCompatible:
			if c.KeyPackage != nil || len(c.Capabilities) > MaxKeyPackageSize {
				return fmt.Errorf("%w: bad nothingCompatible entry", ErrMalformedMessage)
			}
		default:
			if c.KeyPackage != nil || c.Capabilities != nil {
				return fmt.Errorf("%w: exhausted entry with a body", ErrMalformedMessage)
			}
		}
	}
	return nil
}

// Marshal encodes the response.
func (r *KeyPackageResponse) Marshal() ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	return tlspl.Marshal(func(b *cryptobyte.Builder) {
		b.AddUint8(uint8(r.Status))
		if r.Status != DirectoryOK {
			tlspl.AddOpaque(b, []byte(r.Message))
			return
		}
		b.AddUint8(r.Protocol)
		b.AddUint8(uint8(r.UserStatus))
		tlspl.AddOpaque(b, []byte(r.UserURI))
		tlspl.AddVector(b, func(b *cryptobyte.Builder) {
			for _, c := range r.Clients {
				b.AddUint8(uint8(c.Status))
				tlspl.AddOpaque(b, []byte(c.ClientURI))
				switch c.Status {
				case ClientSuccess:
					tlspl.AddOpaque(b, c.KeyPackage)
				case ClientNothingCompatible:
					tlspl.AddOptional(b, c.Capabilities != nil)
					if c.Capabilities != nil {
						tlspl.AddOpaque(b, c.Capabilities)
					}
				}
			}
		})
	})
}

// UnmarshalKeyPackageResponse decodes a response strictly.
func UnmarshalKeyPackageResponse(data []byte) (*KeyPackageResponse, error) {
	r := &KeyPackageResponse{}
	err := tlspl.Unmarshal(data, "p2p.KeyPackageResponse", func(s *cryptobyte.String) bool {
		var status uint8
		if !s.ReadUint8(&status) {
			return false
		}
		r.Status = DirectoryStatus(status)
		if r.Status != DirectoryOK {
			var msg []byte
			if !tlspl.ReadOpaque(s, &msg) {
				return false
			}
			r.Message = string(msg)
			return true
		}
		var userStatus uint8
		var uri []byte
		if !s.ReadUint8(&r.Protocol) || !s.ReadUint8(&userStatus) || !tlspl.ReadOpaque(s, &uri) {
			return false
		}
		r.UserStatus, r.UserURI = UserCode(userStatus), string(uri)
		return tlspl.ReadList(s, func(s *cryptobyte.String) bool {
			var c ClientKeyMaterial
			var st uint8
			var curi []byte
			if len(r.Clients) == MaxClients || !s.ReadUint8(&st) || !tlspl.ReadOpaque(s, &curi) {
				return false
			}
			c.Status, c.ClientURI = ClientCode(st), string(curi)
			switch c.Status {
			case ClientSuccess:
				if !tlspl.ReadOpaque(s, &c.KeyPackage) {
					return false
				}
			case ClientNothingCompatible:
				var present bool
				if !tlspl.ReadOptional(s, &present) {
					return false
				}
				if present && !tlspl.ReadOpaque(s, &c.Capabilities) {
					return false
				}
			case ClientExhausted:
			default:
				return false
			}
			r.Clients = append(r.Clients, c)
			return true
		})
	})
	if err := decodeErr("keypackage response", nil, err); err != nil {
		return nil, err
	}
	if err := r.check(); err != nil {
		return nil, err
	}
	return r, nil
}
