package mls

import (
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"time"
)

// KeyPackage generation (RFC 9420, Section 10).

// ExtensionTypeLastResort marks a KeyPackage that may be used more than
// once when a client has no other left (draft-ietf-mls-extensions,
// last_resort, value 0x000a). Its extension_data is empty.
const ExtensionTypeLastResort ExtensionType = 0x000a

// KeyPackageOptions parameterise [NewKeyPackage].
type KeyPackageOptions struct {
	// NotBefore and NotAfter bound the leaf's lifetime. Zero NotAfter means
	// NotBefore + 90 days; if both are zero the lifetime is unbounded
	// ([0, 2^64-1]), for callers without a clock.
	NotBefore, NotAfter time.Time
	// LastResort adds the last_resort extension.
	LastResort bool
	// Capabilities are advertised in the leaf; the suite, MLS 1.0 and the
	// credential's type are always included.
	Capabilities Capabilities
	// LeafExtensions and Extensions go into the leaf and the KeyPackage.
	LeafExtensions Extensions
	Extensions     Extensions
}

// KeyPackageBundle is a KeyPackage with the private keys a client keeps to
// join with it.
type KeyPackageBundle struct {
	KeyPackage    *KeyPackage
	InitPriv      []byte // HPKE private key of init_key
	EncryptionKey []byte // HPKE private key of the leaf's encryption_key
	SigningKey    SignaturePrivateKey
}

// defaultCapabilities returns c extended with what every client of ours
// supports: MLS 1.0, the suite, basic credentials and the extension types
// and proposals of draft-ietf-mls-extensions that this package implements.
func defaultCapabilities(cs CipherSuite, c Capabilities, cred CredentialType) Capabilities {
	add := func(s []CredentialType, v CredentialType) []CredentialType {
		if !slices.Contains(s, v) {
			s = append(s, v)
		}
		return s
	}
	out := Capabilities{
		Versions:     slices.Clone(c.Versions),
		CipherSuites: slices.Clone(c.CipherSuites),
		Extensions:   slices.Clone(c.Extensions),
		Proposals:    slices.Clone(c.Proposals),
		Credentials:  add(add(slices.Clone(c.Credentials), cred), CredentialTypeBasic),
	}
	if !slices.Contains(out.Versions, ProtocolVersionMLS10) {
		out.Versions = append(out.Versions, ProtocolVersionMLS10)
	}
	if !slices.Contains(out.CipherSuites, cs) {
		out.CipherSuites = append(out.CipherSuites, cs)
	}
	if !slices.Contains(out.Extensions, ExtensionTypeAppDataDictionary) {
		out.Extensions = append(out.Extensions, ExtensionTypeAppDataDictionary)
	}
	for _, p := range []ProposalType{ProposalTypeAppDataUpdate, ProposalTypeSelfRemove} {
		if !slices.Contains(out.Proposals, p) {
			out.Proposals = append(out.Proposals, p)
		}
	}
	return out
}

// NewKeyPackage generates a KeyPackage for credential cred signed with sig:
// fresh init and leaf encryption key pairs drawn from rand, a key_package
// leaf with the given lifetime.
func NewKeyPackage(rand io.Reader, cs CipherSuite, sig SignaturePrivateKey, cred Credential, opts *KeyPackageOptions) (*KeyPackageBundle, error) {
	if opts == nil {
		opts = &KeyPackageOptions{}
	}
	if !sig.Valid() {
		return nil, errors.New("mls: key package needs a signing key")
	}
	initPriv, initPub, err := cs.GenerateKEMKeyPair(rand)
	if err != nil {
		return nil, err
	}
	encPriv, encPub, err := cs.GenerateKEMKeyPair(rand)
	if err != nil {
		return nil, err
	}
	lt := Lifetime{NotAfter: math.MaxUint64}
	if nb, na := opts.NotBefore, opts.NotAfter; !nb.IsZero() || !na.IsZero() {
		if na.IsZero() {
			na = nb.Add(90 * 24 * time.Hour)
		}
		if nb.IsZero() {
			nb = time.Unix(0, 0)
		}
		if na.Before(nb) || nb.Unix() < 0 {
			return nil, fmt.Errorf("mls: key package lifetime [%v, %v] is invalid", nb, na)
		}
		lt = Lifetime{NotBefore: uint64(nb.Unix()), NotAfter: uint64(na.Unix())}
	}
	leaf := LeafNode{
		EncryptionKey: encPub,
		SignatureKey:  sig.PublicKey(),
		Credential:    cred,
		Capabilities:  defaultCapabilities(cs, opts.Capabilities, cred.CredentialType),
		Source:        LeafNodeSourceKeyPackage,
		Lifetime:      lt,
		Extensions:    nonNilExtensions(opts.LeafExtensions),
	}
	if err := leaf.Sign(cs, sig, nil, 0); err != nil {
		return nil, err
	}
	exts := nonNilExtensions(slices.Clone(opts.Extensions))
	if opts.LastResort {
		if _, ok := exts.Find(ExtensionTypeLastResort); !ok {
			exts = append(exts, Extension{ExtensionType: ExtensionTypeLastResort, ExtensionData: []byte{}})
		}
	}
	kp := &KeyPackage{Version: ProtocolVersionMLS10, CipherSuite: cs, InitKey: initPub, LeafNode: leaf, Extensions: exts}
	if err := kp.Sign(sig); err != nil {
		return nil, err
	}
	// Round-trip so the KeyPackage carries its encoding like a received one.
	raw, err := kp.Marshal()
	if err != nil {
		return nil, err
	}
	if kp, err = UnmarshalKeyPackage(raw); err != nil {
		return nil, err
	}
	return &KeyPackageBundle{KeyPackage: kp, InitPriv: initPriv, EncryptionKey: encPriv, SigningKey: sig}, nil
}

// IsLastResort reports whether kp carries the last_resort extension.
func IsLastResort(kp *KeyPackage) bool {
	_, ok := kp.Extensions.Find(ExtensionTypeLastResort)
	return ok
}

func nonNilExtensions(e Extensions) Extensions {
	if e == nil {
		return Extensions{}
	}
	return e
}

// validateKeyPackage checks a KeyPackage for an Add (RFC 9420, Sections
// 10.1 and 12.1.1): version, suite, signature, init_key distinct from the
// leaf's encryption_key, and the leaf against the tree.
func validateKeyPackage(t *Tree, ctx *GroupContext, kp *KeyPackage, opts *ValidationOptions) error {
	if kp.Version != ctx.Version {
		return fmt.Errorf("%w: key package version %d in a group of version %d", ErrInvalidProposal, kp.Version, ctx.Version)
	}
	if kp.CipherSuite != ctx.CipherSuite {
		return fmt.Errorf("%w: key package suite %v in a group of suite %v", ErrInvalidProposal, kp.CipherSuite, ctx.CipherSuite)
	}
	if err := kp.Verify(); err != nil {
		return err
	}
	if string(kp.InitKey) == string(kp.LeafNode.EncryptionKey) {
		return fmt.Errorf("%w: init_key equals the leaf's encryption_key", ErrInvalidProposal)
	}
	if err := t.CheckLeafNode(&kp.LeafNode, LeafIndex(t.LeafCount()), LeafNodeInKeyPackage, opts); err != nil {
		return err
	}
	return nil
}
