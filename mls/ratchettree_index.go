package mls

import (
	"encoding/binary"
	"slices"

	"golang.org/x/crypto/cryptobyte"

	"github.com/rhizome-chat/rhizome/internal/tlspl"
)

// This file holds the indices a [Tree] keeps beside its nodes: a
// copy-on-write hash index of public keys (for the uniqueness rules of RFC
// 9420, Sections 7.3 and 12.4.2) and counts of the capabilities members
// advertise (for the credential-type and required-capabilities rules).

// rtLeafKeys returns the encryption and signature keys of a stored LeafNode
// encoding (its first two fields) as sub-slices, without decoding the rest.
func rtLeafKeys(raw []byte) (enc, sig []byte) {
	s := cryptobyte.String(raw)
	var e, g cryptobyte.String
	if !tlspl.ReadVector(&s, &e) || !tlspl.ReadVector(&s, &g) {
		return nil, nil
	}
	return e, g
}

const (
	rtIdxChunkBits = 6  // 64 buckets per chunk
	rtIdxMinBits   = 6  // a new index has one chunk
	rtIdxMaxBits   = 16 // at most 65,536 buckets
)

// rtKeyIndex maps public keys to the nodes holding them. Its buckets live in
// chunks of 64 that clones share until written; the bucket count grows with
// the number of keys (rehashing from the stored tags, without the keys).
// Entries hold a 32-bit tag of the key and the node; the key itself is read
// back from the tree, so the index costs about 8 bytes per key.
type rtKeyIndex struct {
	bits   uint8 // log2 of the bucket count; 0 for an unallocated index
	n      int
	chunks []*rtIdxChunk
}

type rtIdxChunk struct {
	owner   *rtOwner
	buckets [1 << rtIdxChunkBits][]rtIdxEntry
}

type rtIdxEntry struct {
	tag  uint32
	node NodeIndex
}

// rtKeyTag spreads a public key over buckets. Public keys are uniformly
// distributed except for fixed prefixes (such as the 0x04 of uncompressed
// points), so their last eight bytes are mixed.
func rtKeyTag(key []byte) uint32 {
	var tail [8]byte
	if len(key) >= 8 {
		copy(tail[:], key[len(key)-8:])
	} else {
		copy(tail[:], key)
	}
	h := binary.LittleEndian.Uint64(tail[:])
	h ^= uint64(len(key)) << 56
	h *= 0x9e3779b97f4a7c15
	return uint32(h >> 32)
}

func (ix *rtKeyIndex) bucketOf(tag uint32) int { return int(tag >> (32 - ix.bits)) }

func (ix rtKeyIndex) clone() rtKeyIndex {
	return rtKeyIndex{bits: ix.bits, n: ix.n, chunks: slices.Clone(ix.chunks)}
}

func (ix *rtKeyIndex) bucketW(b int, owner *rtOwner) *[]rtIdxEntry {
	ci := b >> rtIdxChunkBits
	c := ix.chunks[ci]
	switch {
	case c == nil:
		c = &rtIdxChunk{owner: owner}
		ix.chunks[ci] = c
	case c.owner != owner:
		n := *c
		n.owner = owner
		c = &n
		ix.chunks[ci] = c
	}
	return &c.buckets[b&(1<<rtIdxChunkBits-1)]
}

// resize rebuilds the index with 2^bits buckets.
func (ix *rtKeyIndex) resize(bits uint8, owner *rtOwner) {
	old := ix.chunks
	ix.bits = bits
	ix.chunks = make([]*rtIdxChunk, 1<<(bits-rtIdxChunkBits))
	for _, c := range old {
		if c == nil {
			continue
		}
		for _, bucket := range c.buckets {
			for _, e := range bucket {
				p := ix.bucketW(ix.bucketOf(e.tag), owner)
				*p = append(*p, e) // the new buckets are not shared yet
			}
		}
	}
}

func (ix *rtKeyIndex) add(key []byte, x NodeIndex, owner *rtOwner) {
	if ix.bits == 0 {
		ix.resize(rtIdxMinBits, owner)
	}
	if ix.n >= 4<<ix.bits && ix.bits < rtIdxMaxBits {
		ix.resize(min(ix.bits+2, rtIdxMaxBits), owner)
	}
	tag := rtKeyTag(key)
	p := ix.bucketW(ix.bucketOf(tag), owner)
	// Bucket slices may be shared with clones: never append in place.
	n := make([]rtIdxEntry, len(*p), len(*p)+1)
	copy(n, *p)
	*p = append(n, rtIdxEntry{tag: tag, node: x})
	ix.n++
}

func (ix *rtKeyIndex) remove(key []byte, x NodeIndex, owner *rtOwner) {
	if ix.bits == 0 {
		return
	}
	tag := rtKeyTag(key)
	b := ix.bucketOf(tag)
	if ix.chunks[b>>rtIdxChunkBits] == nil {
		return
	}
	p := ix.bucketW(b, owner)
	for i, e := range *p {
		if e.tag == tag && e.node == x {
			n := make([]rtIdxEntry, 0, len(*p)-1)
			n = append(n, (*p)[:i]...)
			*p = append(n, (*p)[i+1:]...)
			ix.n--
			return
		}
	}
}

// lookup returns the nodes whose key (read with keyOf) equals key.
func (ix *rtKeyIndex) lookup(key []byte, keyOf func(NodeIndex) []byte) []NodeIndex {
	if ix.bits == 0 {
		return nil
	}
	tag := rtKeyTag(key)
	b := ix.bucketOf(tag)
	c := ix.chunks[b>>rtIdxChunkBits]
	if c == nil {
		return nil
	}
	var out []NodeIndex
	for _, e := range c.buckets[b&(1<<rtIdxChunkBits-1)] {
		if e.tag == tag && string(keyOf(e.node)) == string(key) {
			out = append(out, e.node)
		}
	}
	return out
}

// holder returns a node other than except whose key equals key.
func (ix *rtKeyIndex) holder(key []byte, except NodeIndex, keyOf func(NodeIndex) []byte) (NodeIndex, bool) {
	for _, x := range ix.lookup(key, keyOf) {
		if x != except {
			return x, true
		}
	}
	return 0, false
}

func (t *Tree) encKeyOf(x NodeIndex) []byte {
	k, _ := t.EncryptionKey(x)
	return k
}

func (t *Tree) sigKeyOf(x NodeIndex) []byte {
	l, ok := x.LeafIndex()
	if !ok {
		return nil
	}
	k, _ := t.LeafSignatureKey(l)
	return k
}

// EncryptionKeyHolder returns a node other than except whose encryption key
// equals key, if any (RFC 9420, Sections 7.3 and 12.4.2 require them to be
// unique). Pass an index outside the tree as except to exclude nothing.
func (t *Tree) EncryptionKeyHolder(key []byte, except NodeIndex) (NodeIndex, bool) {
	return t.enc.holder(key, except, t.encKeyOf)
}

// SignatureKeyHolder returns a leaf other than except whose signature key
// equals key, if any (RFC 9420, Section 7.3).
func (t *Tree) SignatureKeyHolder(key []byte, except LeafIndex) (LeafIndex, bool) {
	x, ok := t.sig.holder(key, except.NodeIndex(), t.sigKeyOf)
	if !ok {
		return 0, false
	}
	l, _ := x.LeafIndex()
	return l, true
}

// ---------------------------------------------------------------------------
// Capability counts.

// rtCaps counts, over the non-blank leaves, the credential types in use and
// the values each capability list supports. GREASE and unknown values are
// counted like any other and never consulted.
type rtCaps struct {
	credInUse map[CredentialType]int
	credSup   map[CredentialType]int
	extSup    map[ExtensionType]int
	propSup   map[ProposalType]int
}

func newRTCaps() *rtCaps {
	return &rtCaps{
		credInUse: map[CredentialType]int{},
		credSup:   map[CredentialType]int{},
		extSup:    map[ExtensionType]int{},
		propSup:   map[ProposalType]int{},
	}
}

// capsW returns the capability counts for writing, copying shared ones.
func (t *Tree) capsW() *rtCaps {
	if !t.capsOwn {
		c := &rtCaps{
			credInUse: cloneMap(t.caps.credInUse),
			credSup:   cloneMap(t.caps.credSup),
			extSup:    cloneMap(t.caps.extSup),
			propSup:   cloneMap(t.caps.propSup),
		}
		t.caps, t.capsOwn = c, true
	}
	return t.caps
}

func cloneMap[K comparable](m map[K]int) map[K]int {
	n := make(map[K]int, len(m))
	for k, v := range m {
		n[k] = v
	}
	return n
}

// countDistinct adds d to m[v] once for each distinct v in vals.
func countDistinct[K comparable](m map[K]int, vals []K, d int) {
	for i, v := range vals {
		if slices.Contains(vals[:i], v) {
			continue
		}
		if m[v] += d; m[v] == 0 {
			delete(m, v)
		}
	}
}

func (c *rtCaps) count(ln *LeafNode, d int) {
	countDistinct(c.credInUse, []CredentialType{ln.Credential.CredentialType}, d)
	countDistinct(c.credSup, ln.Capabilities.Credentials, d)
	countDistinct(c.extSup, ln.Capabilities.Extensions, d)
	countDistinct(c.propSup, ln.Capabilities.Proposals, d)
}

// defaultExtension and defaultProposal report the types RFC 9420, Section
// 7.2 assumes every client supports (and forbids listing).
func defaultExtension(e ExtensionType) bool { return e >= 1 && e <= 5 }
func defaultProposal(p ProposalType) bool   { return p >= 1 && p <= 7 }

// SupportedByAll reports whether every member's capabilities list each of
// the given extension, proposal and credential types (default extension and
// proposal types count as supported), as a required_capabilities or
// GroupContextExtensions proposal requires (RFC 9420, Sections 11.1 and
// 12.1.7). It costs O(len(types)), not O(members).
func (t *Tree) SupportedByAll(exts []ExtensionType, props []ProposalType, creds []CredentialType) bool {
	n := t.MemberCount()
	for _, e := range exts {
		if !defaultExtension(e) && t.caps.extSup[e] != n {
			return false
		}
	}
	for _, p := range props {
		if !defaultProposal(p) && t.caps.propSup[p] != n {
			return false
		}
	}
	for _, c := range creds {
		if t.caps.credSup[c] != n {
			return false
		}
	}
	return true
}

// CredentialTypesInUse returns the distinct credential types of the
// members' leaves, in increasing order.
func (t *Tree) CredentialTypesInUse() []CredentialType {
	out := make([]CredentialType, 0, len(t.caps.credInUse))
	for c := range t.caps.credInUse {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}
