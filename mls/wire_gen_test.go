package mls

import (
	"math/rand/v2"
)

// Random generators of well-formed wire values, for the quick-style round
// trip tests. Every value they build must encode without error.

func wireBytes(r *rand.Rand, max int) []byte {
	b := make([]byte, r.IntN(max+1))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func wireU16s[T ~uint16](r *rand.Rand) []T {
	out := make([]T, r.IntN(4))
	for i := range out {
		out[i] = T(r.Uint32())
	}
	return out
}

func wireCredential(r *rand.Rand) Credential {
	if r.IntN(2) == 0 {
		return NewBasicCredential(wireBytes(r, 20))
	}
	c := Credential{CredentialType: CredentialTypeX509}
	for range r.IntN(3) {
		c.Certificates = append(c.Certificates, wireBytes(r, 40))
	}
	return c
}

func wireExtensions(r *rand.Rand) Extensions {
	var e Extensions
	used := map[ExtensionType]bool{}
	for range r.IntN(4) {
		t := ExtensionType(r.IntN(8))
		if used[t] {
			continue
		}
		used[t] = true
		e = append(e, Extension{ExtensionType: t, ExtensionData: wireBytes(r, 16)})
	}
	return e
}

func wireCapabilities(r *rand.Rand) Capabilities {
	return Capabilities{
		Versions:     wireU16s[ProtocolVersion](r),
		CipherSuites: wireU16s[CipherSuite](r),
		Extensions:   wireU16s[ExtensionType](r),
		Proposals:    wireU16s[ProposalType](r),
		Credentials:  wireU16s[CredentialType](r),
	}
}

func wireLeafNode(r *rand.Rand) LeafNode {
	n := LeafNode{
		EncryptionKey: wireBytes(r, 32),
		SignatureKey:  wireBytes(r, 32),
		Credential:    wireCredential(r),
		Capabilities:  wireCapabilities(r),
		Source:        LeafNodeSource(1 + r.IntN(3)),
		Extensions:    wireExtensions(r),
		Signature:     wireBytes(r, 64),
	}
	switch n.Source {
	case LeafNodeSourceKeyPackage:
		n.Lifetime = Lifetime{NotBefore: r.Uint64(), NotAfter: r.Uint64()}
	case LeafNodeSourceCommit:
		n.ParentHash = wireBytes(r, 32)
	}
	return n
}

func wireKeyPackage(r *rand.Rand) KeyPackage {
	return KeyPackage{
		Version:     ProtocolVersionMLS10,
		CipherSuite: CipherSuite(r.Uint32()),
		InitKey:     wireBytes(r, 32),
		LeafNode:    wireLeafNode(r),
		Extensions:  wireExtensions(r),
		Signature:   wireBytes(r, 64),
	}
}

func wirePSKID(r *rand.Rand) PreSharedKeyID {
	if r.IntN(2) == 0 {
		return PreSharedKeyID{PSKType: PSKTypeExternal, PSKID: wireBytes(r, 16), PSKNonce: wireBytes(r, 32)}
	}
	return PreSharedKeyID{
		PSKType: PSKTypeResumption, Usage: ResumptionPSKUsage(1 + r.IntN(3)),
		PSKGroupID: wireBytes(r, 16), PSKEpoch: r.Uint64(), PSKNonce: wireBytes(r, 32),
	}
}

func wireProposal(r *rand.Rand) Proposal {
	switch r.IntN(9) {
	case 0:
		return &AddProposal{KeyPackage: wireKeyPackage(r)}
	case 1:
		return &UpdateProposal{LeafNode: wireLeafNode(r)}
	case 2:
		return &RemoveProposal{Removed: LeafIndex(r.Uint32())}
	case 3:
		return &PreSharedKeyProposal{PSK: wirePSKID(r)}
	case 4:
		return &ReInitProposal{GroupID: wireBytes(r, 16), Version: ProtocolVersionMLS10,
			CipherSuite: CipherSuite(r.Uint32()), Extensions: wireExtensions(r)}
	case 5:
		return &ExternalInitProposal{KEMOutput: wireBytes(r, 32)}
	case 6:
		return &GroupContextExtensionsProposal{Extensions: wireExtensions(r)}
	case 7:
		p := &AppDataUpdateProposal{ComponentID: ComponentID(r.Uint32()), Op: AppDataUpdateOperation(1 + r.IntN(2))}
		if p.Op == AppDataUpdateOperationUpdate {
			p.Update = wireBytes(r, 24)
		}
		return p
	default:
		return &SelfRemoveProposal{}
	}
}

func wireUpdatePath(r *rand.Rand) *UpdatePath {
	u := &UpdatePath{LeafNode: wireLeafNode(r)}
	for range r.IntN(3) {
		n := UpdatePathNode{EncryptionKey: wireBytes(r, 32)}
		for range r.IntN(3) {
			n.EncryptedPathSecret = append(n.EncryptedPathSecret,
				HPKECiphertext{KEMOutput: wireBytes(r, 32), Ciphertext: wireBytes(r, 48)})
		}
		u.Nodes = append(u.Nodes, n)
	}
	return u
}

func wireCommit(r *rand.Rand) *Commit {
	c := &Commit{}
	for range r.IntN(4) {
		if r.IntN(2) == 0 {
			c.Proposals = append(c.Proposals, ProposalOrRef{Proposal: wireProposal(r)})
		} else {
			c.Proposals = append(c.Proposals, ProposalOrRef{Reference: wireBytes(r, 32)})
		}
	}
	if r.IntN(2) == 0 {
		c.Path = wireUpdatePath(r)
	}
	return c
}

func wireSender(r *rand.Rand) Sender {
	s := Sender{SenderType: SenderType(1 + r.IntN(4))}
	switch s.SenderType {
	case SenderTypeMember:
		s.LeafIndex = LeafIndex(r.Uint32())
	case SenderTypeExternal:
		s.SenderIndex = r.Uint32()
	}
	return s
}

func wireFramedContent(r *rand.Rand) FramedContent {
	c := FramedContent{
		GroupID: wireBytes(r, 16), Epoch: r.Uint64(), Sender: wireSender(r),
		AuthenticatedData: wireBytes(r, 8), ContentType: ContentType(1 + r.IntN(3)),
	}
	switch c.ContentType {
	case ContentTypeApplication:
		c.ApplicationData = wireBytes(r, 64)
	case ContentTypeProposal:
		c.Proposal = wireProposal(r)
	case ContentTypeCommit:
		c.Commit = wireCommit(r)
	}
	return c
}

func wireAuth(r *rand.Rand, t ContentType) FramedContentAuthData {
	a := FramedContentAuthData{Signature: wireBytes(r, 64)}
	if t == ContentTypeCommit {
		a.ConfirmationTag = wireBytes(r, 32)
	}
	return a
}

func wirePublicMessage(r *rand.Rand) *PublicMessage {
	m := &PublicMessage{Content: wireFramedContent(r)}
	m.Auth = wireAuth(r, m.Content.ContentType)
	if m.Content.Sender.SenderType == SenderTypeMember {
		m.MembershipTag = wireBytes(r, 32)
	}
	return m
}

func wirePrivateMessage(r *rand.Rand) *PrivateMessage {
	return &PrivateMessage{
		GroupID: wireBytes(r, 16), Epoch: r.Uint64(), ContentType: ContentType(1 + r.IntN(3)),
		AuthenticatedData: wireBytes(r, 8), EncryptedSenderData: wireBytes(r, 28), Ciphertext: wireBytes(r, 100),
	}
}

func wireGroupContext(r *rand.Rand) GroupContext {
	return GroupContext{
		Version: ProtocolVersionMLS10, CipherSuite: CipherSuite(r.Uint32()), GroupID: wireBytes(r, 16),
		Epoch: r.Uint64(), TreeHash: wireBytes(r, 32), ConfirmedTranscriptHash: wireBytes(r, 32),
		Extensions: wireExtensions(r),
	}
}

func wireGroupInfo(r *rand.Rand) *GroupInfo {
	return &GroupInfo{
		GroupContext: wireGroupContext(r), Extensions: wireExtensions(r),
		ConfirmationTag: wireBytes(r, 32), Signer: LeafIndex(r.Uint32()), Signature: wireBytes(r, 64),
	}
}

func wireGroupSecrets(r *rand.Rand) *GroupSecrets {
	g := &GroupSecrets{JoinerSecret: wireBytes(r, 32)}
	if r.IntN(2) == 0 {
		g.PathSecret = &PathSecret{PathSecret: wireBytes(r, 32)}
	}
	for range r.IntN(3) {
		g.PSKs = append(g.PSKs, wirePSKID(r))
	}
	return g
}

func wireWelcome(r *rand.Rand) *Welcome {
	w := &Welcome{CipherSuite: CipherSuite(r.Uint32()), EncryptedGroupInfo: wireBytes(r, 100)}
	for range r.IntN(3) {
		w.Secrets = append(w.Secrets, EncryptedGroupSecrets{
			NewMember:             wireBytes(r, 32),
			EncryptedGroupSecrets: HPKECiphertext{KEMOutput: wireBytes(r, 32), Ciphertext: wireBytes(r, 64)},
		})
	}
	return w
}

func wireRatchetTree(r *rand.Rand) RatchetTree {
	n := 1 + 2*r.IntN(4)
	t := make(RatchetTree, n)
	for i := range t {
		if i != n-1 && r.IntN(3) == 0 {
			continue // blank
		}
		if i%2 == 0 {
			leaf := wireLeafNode(r)
			t[i] = &Node{Leaf: &leaf}
		} else {
			p := &ParentNode{EncryptionKey: wireBytes(r, 32), ParentHash: wireBytes(r, 32)}
			for range r.IntN(3) {
				p.UnmergedLeaves = append(p.UnmergedLeaves, LeafIndex(r.Uint32()))
			}
			t[i] = &Node{Parent: p}
		}
	}
	return t
}

func wireMLSMessage(r *rand.Rand) *MLSMessage {
	m := &MLSMessage{Version: ProtocolVersionMLS10, WireFormat: WireFormat(1 + r.IntN(5))}
	switch m.WireFormat {
	case WireFormatPublicMessage:
		m.PublicMessage = wirePublicMessage(r)
	case WireFormatPrivateMessage:
		m.PrivateMessage = wirePrivateMessage(r)
	case WireFormatWelcome:
		m.Welcome = wireWelcome(r)
	case WireFormatGroupInfo:
		m.GroupInfo = wireGroupInfo(r)
	case WireFormatKeyPackage:
		kp := wireKeyPackage(r)
		m.KeyPackage = &kp
	}
	return m
}
