package mls

import (
	"golang.org/x/crypto/cryptobyte"

	"github.com/rhizome-chat/rhizome/internal/tlspl"
)

// Commit applies a list of proposals and optionally updates the committer's
// path (RFC 9420, Section 12.4):
//
//	struct {
//	    ProposalOrRef proposals<V>;
//	    optional<UpdatePath> path;
//	} Commit;
type Commit struct {
	Proposals []ProposalOrRef
	Path      *UpdatePath
}

func (c *Commit) marshal(b *cryptobyte.Builder) {
	tlspl.AddVector(b, func(b *cryptobyte.Builder) {
		for i := range c.Proposals {
			c.Proposals[i].marshal(b)
		}
	})
	tlspl.AddOptional(b, c.Path != nil)
	if c.Path != nil {
		c.Path.marshal(b)
	}
}

func (c *Commit) unmarshal(s *cryptobyte.String) error {
	*c = Commit{Proposals: []ProposalOrRef{}}
	err := readListErr(s, "Commit.proposals", func(s *cryptobyte.String) error {
		var p ProposalOrRef
		if err := p.unmarshal(s); err != nil {
			return err
		}
		c.Proposals = append(c.Proposals, p)
		return nil
	})
	if err != nil {
		return err
	}
	var present bool
	if err := readOptionalErr(s, "Commit.path", &present); err != nil {
		return err
	}
	if present {
		c.Path = new(UpdatePath)
		return c.Path.unmarshal(s)
	}
	return nil
}

// Marshal returns the TLS encoding of c.
func (c *Commit) Marshal() ([]byte, error) { return encodeValue(c.marshal) }

// UnmarshalCommit decodes a Commit, rejecting trailing bytes.
func UnmarshalCommit(data []byte) (*Commit, error) {
	var c Commit
	if err := decodeStrict(data, "mls.Commit", c.unmarshal); err != nil {
		return nil, err
	}
	return &c, nil
}

// HPKECiphertext is an HPKE-encrypted value (RFC 9420, Section 7.6).
type HPKECiphertext struct {
	KEMOutput  []byte
	Ciphertext []byte
}

func (h *HPKECiphertext) marshal(b *cryptobyte.Builder) {
	tlspl.AddOpaque(b, h.KEMOutput)
	tlspl.AddOpaque(b, h.Ciphertext)
}

func (h *HPKECiphertext) unmarshal(s *cryptobyte.String) error {
	if err := readOpaqueField(s, &h.KEMOutput, "HPKECiphertext.kem_output"); err != nil {
		return err
	}
	return readOpaqueField(s, &h.Ciphertext, "HPKECiphertext.ciphertext")
}

// UpdatePathNode is one parent node of an [UpdatePath]: its new public key
// and the path secret encrypted to each resolution node of the copath child
// (RFC 9420, Section 7.6).
type UpdatePathNode struct {
	EncryptionKey       []byte
	EncryptedPathSecret []HPKECiphertext
}

// UpdatePath is the committer's new leaf and direct path (RFC 9420,
// Section 7.6).
type UpdatePath struct {
	LeafNode LeafNode
	Nodes    []UpdatePathNode
}

func (u *UpdatePath) marshal(b *cryptobyte.Builder) {
	u.LeafNode.marshal(b)
	tlspl.AddVector(b, func(b *cryptobyte.Builder) {
		for i := range u.Nodes {
			n := &u.Nodes[i]
			tlspl.AddOpaque(b, n.EncryptionKey)
			tlspl.AddVector(b, func(b *cryptobyte.Builder) {
				for j := range n.EncryptedPathSecret {
					n.EncryptedPathSecret[j].marshal(b)
				}
			})
		}
	})
}

func (u *UpdatePath) unmarshal(s *cryptobyte.String) error {
	if err := u.LeafNode.unmarshal(s); err != nil {
		return err
	}
	u.Nodes = []UpdatePathNode{}
	return readListErr(s, "UpdatePath.nodes", func(s *cryptobyte.String) error {
		var n UpdatePathNode
		if err := readOpaqueField(s, &n.EncryptionKey, "UpdatePathNode.encryption_key"); err != nil {
			return err
		}
		n.EncryptedPathSecret = []HPKECiphertext{}
		err := readListErr(s, "UpdatePathNode.encrypted_path_secret", func(s *cryptobyte.String) error {
			var h HPKECiphertext
			if err := h.unmarshal(s); err != nil {
				return err
			}
			n.EncryptedPathSecret = append(n.EncryptedPathSecret, h)
			return nil
		})
		if err != nil {
			return err
		}
		u.Nodes = append(u.Nodes, n)
		return nil
	})
}

// Marshal returns the TLS encoding of u.
func (u *UpdatePath) Marshal() ([]byte, error) { return encodeValue(u.marshal) }

// UnmarshalUpdatePath decodes an UpdatePath, rejecting trailing bytes.
func UnmarshalUpdatePath(data []byte) (*UpdatePath, error) {
	var u UpdatePath
	if err := decodeStrict(data, "mls.UpdatePath", u.unmarshal); err != nil {
		return nil, err
	}
	return &u, nil
}
