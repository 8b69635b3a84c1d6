package mls

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/cryptobyte"

	"github.com/rhizome-chat/rhizome/internal/tlspl"
)

// Label of the GroupSecrets encryption (RFC 9420, Section 12.4.3.1).
const labelWelcome = "Welcome"

// ErrNotForUs reports a Welcome that holds no secrets for the given
// KeyPackage.
var ErrNotForUs = errors.New("mls: welcome has no secrets for this key package")

// PathSecret is the path secret a joiner receives for the committer's
// lowest common ancestor with it (RFC 9420, Section 12.4.3.1).
type PathSecret struct {
	PathSecret []byte
}

// GroupSecrets are the secrets a joiner needs (RFC 9420, Section 12.4.3.1):
//
//	struct {
//	  opaque joiner_secret<V>;
//	  optional<PathSecret> path_secret;
//	  PreSharedKeyID psks<V>;
//	} GroupSecrets;
type GroupSecrets struct {
	JoinerSecret []byte
	PathSecret   *PathSecret
	PSKs         []PreSharedKeyID
}

func (g *GroupSecrets) marshal(b *cryptobyte.Builder) {
	tlspl.AddOpaque(b, g.JoinerSecret)
	tlspl.AddOptional(b, g.PathSecret != nil)
	if g.PathSecret != nil {
		tlspl.AddOpaque(b, g.PathSecret.PathSecret)
	}
	tlspl.AddVector(b, func(b *cryptobyte.Builder) {
		for i := range g.PSKs {
			g.PSKs[i].marshal(b)
		}
	})
}

func (g *GroupSecrets) unmarshal(s *cryptobyte.String) error {
	*g = GroupSecrets{PSKs: []PreSharedKeyID{}}
	if err := readOpaqueField(s, &g.JoinerSecret, "GroupSecrets.joiner_secret"); err != nil {
		return err
	}
	var present bool
	if err := readOptionalErr(s, "GroupSecrets.path_secret", &present); err != nil {
		return err
	}
	if present {
		g.PathSecret = new(PathSecret)
		if err := readOpaqueField(s, &g.PathSecret.PathSecret, "PathSecret.path_secret"); err != nil {
			return err
		}
	}
	return readListErr(s, "GroupSecrets.psks", func(s *cryptobyte.String) error {
		var id PreSharedKeyID
		if err := id.unmarshal(s); err != nil {
			return err
		}
		g.PSKs = append(g.PSKs, id)
		return nil
	})
}

// Marshal returns the TLS encoding of g.
func (g *GroupSecrets) Marshal() ([]byte, error) { return encodeValue(g.marshal) }

// UnmarshalGroupSecrets decodes GroupSecrets, rejecting trailing bytes.
func UnmarshalGroupSecrets(data []byte) (*GroupSecrets, error) {
	var g GroupSecrets
	if err := decodeStrict(data, "mls.GroupSecrets", g.unmarshal); err != nil {
		return nil, err
	}
	return &g, nil
}

// EncryptedGroupSecrets are one joiner's GroupSecrets, HPKE-encrypted to the
// init_key of the KeyPackage named by NewMember (a KeyPackageRef).
type EncryptedGroupSecrets struct {
	NewMember             []byte
	EncryptedGroupSecrets HPKECiphertext
}

// Welcome invites new members (RFC 9420, Section 12.4.3.1):
//
//	struct {
//	  CipherSuite cipher_suite;
//	  EncryptedGroupSecrets secrets<V>;
//	  opaque encrypted_group_info<V>;
//	} Welcome;
type Welcome struct {
	CipherSuite        CipherSuite
	Secrets            []EncryptedGroupSecrets
	EncryptedGroupInfo []byte
}

func (w *Welcome) marshal(b *cryptobyte.Builder) {
	b.AddUint16(uint16(w.CipherSuite))
	tlspl.AddVector(b, func(b *cryptobyte.Builder) {
		for i := range w.Secrets {
			tlspl.AddOpaque(b, w.Secrets[i].NewMember)
			w.Secrets[i].EncryptedGroupSecrets.marshal(b)
		}
	})
	tlspl.AddOpaque(b, w.EncryptedGroupInfo)
}

func (w *Welcome) unmarshal(s *cryptobyte.String) error {
	*w = Welcome{Secrets: []EncryptedGroupSecrets{}}
	var cs uint16
	if err := readU16(s, &cs, "Welcome.cipher_suite"); err != nil {
		return err
	}
	w.CipherSuite = CipherSuite(cs)
	err := readListErr(s, "Welcome.secrets", func(s *cryptobyte.String) error {
		var e EncryptedGroupSecrets
		if err := readOpaqueField(s, &e.NewMember, "EncryptedGroupSecrets.new_member"); err != nil {
			return err
		}
		if err := e.EncryptedGroupSecrets.unmarshal(s); err != nil {
			return err
		}
		w.Secrets = append(w.Secrets, e)
		return nil
	})
	if err != nil {
		return err
	}
	return readOpaqueField(s, &w.EncryptedGroupInfo, "Welcome.encrypted_group_info")
}

// Marshal returns the TLS encoding of w.
func (w *Welcome) Marshal() ([]byte, error) { return encodeValue(w.marshal) }

// UnmarshalWelcome decodes a Welcome, rejecting trailing bytes.
func UnmarshalWelcome(data []byte) (*Welcome, error) {
	var w Welcome
	if err := decodeStrict(data, "mls.Welcome", w.unmarshal); err != nil {
		return nil, err
	}
	return &w, nil
}

// NewWelcome starts a Welcome by encrypting the signed GroupInfo under
// welcome_secret. Add each joiner with [Welcome.AddMember].
func NewWelcome(cs CipherSuite, welcomeSecret []byte, gi *GroupInfo) (*Welcome, error) {
	key, nonce, err := cs.WelcomeKeyNonce(welcomeSecret)
	if err != nil {
		return nil, err
	}
	pt, err := gi.Marshal()
	if err != nil {
		return nil, err
	}
	ct, err := cs.Seal(key, nonce, nil, pt)
	if err != nil {
		return nil, err
	}
	return &Welcome{CipherSuite: cs, Secrets: []EncryptedGroupSecrets{}, EncryptedGroupInfo: ct}, nil
}

// AddMember encrypts gs to the KeyPackage's init_key with
// EncryptWithLabel(init_key, "Welcome", encrypted_group_info, GroupSecrets).
func (w *Welcome) AddMember(kp *KeyPackage, gs *GroupSecrets, rand io.Reader) error {
	ref, err := kp.Ref()
	if err != nil {
		return err
	}
	pt, err := gs.Marshal()
	if err != nil {
		return err
	}
	kem, ct, err := w.CipherSuite.EncryptWithLabel(kp.InitKey, labelWelcome, w.EncryptedGroupInfo, pt, rand)
	if err != nil {
		return fmt.Errorf("mls: encrypt group secrets: %w", err)
	}
	w.Secrets = append(w.Secrets, EncryptedGroupSecrets{
		NewMember:             ref,
		EncryptedGroupSecrets: HPKECiphertext{KEMOutput: kem, Ciphertext: ct},
	})
	return nil
}

// DecryptGroupSecrets finds the entry for the KeyPackage with reference ref
// and decrypts it with the KeyPackage's init private key.
func (w *Welcome) DecryptGroupSecrets(ref, initPriv []byte) (*GroupSecrets, error) {
	for i := range w.Secrets {
		e := &w.Secrets[i]
		if !bytes.Equal(e.NewMember, ref) {
			continue
		}
		pt, err := w.CipherSuite.DecryptWithLabel(initPriv, labelWelcome, w.EncryptedGroupInfo,
			e.EncryptedGroupSecrets.KEMOutput, e.EncryptedGroupSecrets.Ciphertext)
		if err != nil {
			return nil, fmt.Errorf("%w: group secrets: %w", ErrDecrypt, err)
		}
		return UnmarshalGroupSecrets(pt)
	}
	return nil, ErrNotForUs
}

// DecryptGroupInfo decrypts the GroupInfo with welcome_secret. The caller
// verifies its signature ([GroupInfo.Verify]) with the signer's key from
// the ratchet tree, and its confirmation tag.
func (w *Welcome) DecryptGroupInfo(welcomeSecret []byte) (*GroupInfo, error) {
	key, nonce, err := w.CipherSuite.WelcomeKeyNonce(welcomeSecret)
	if err != nil {
		return nil, err
	}
	pt, err := w.CipherSuite.Open(key, nonce, nil, w.EncryptedGroupInfo)
	if err != nil {
		return nil, fmt.Errorf("%w: group info: %w", ErrDecrypt, err)
	}
	gi, err := UnmarshalGroupInfo(pt)
	if err != nil {
		return nil, err
	}
	if gi.GroupContext.CipherSuite != w.CipherSuite {
		return nil, fmt.Errorf("%w: GroupInfo cipher suite differs from the Welcome's", ErrInvalidMessage)
	}
	return gi, nil
}
