package mls

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// MessageProtector protects and unprotects the messages of one epoch
// (RFC 9420, Section 6): PublicMessage signatures and membership tags, and
// PrivateMessage content and sender-data encryption with keys from the
// epoch's [SecretTree]. It is the layer the group state machine calls for
// every message; it holds no group state beyond the epoch's secrets.
//
// A MessageProtector is not safe for concurrent use (the secret tree
// ratchets on every message).
type MessageProtector struct {
	suite            CipherSuite
	groupContext     []byte // serialized GroupContext of the epoch
	groupID          []byte
	epoch            uint64
	senderDataSecret []byte
	membershipKey    []byte
	tree             *SecretTree
	paddingBlock     int
}

// ProtectorConfig holds what a [MessageProtector] needs from an epoch.
type ProtectorConfig struct {
	// GroupContext is the epoch's GroupContext; it supplies the cipher
	// suite, group ID and epoch, and its encoding enters every
	// FramedContentTBS of a member sender.
	GroupContext *GroupContext
	// SenderDataSecret and MembershipKey come from the key schedule
	// ([EpochSecrets]). The protector keeps these slices (it does not copy
	// them), so erasing them erases the protector's copy too.
	SenderDataSecret []byte
	MembershipKey    []byte
	// Tree is the epoch's secret tree, rooted at its encryption_secret.
	Tree *SecretTree
	// PaddingBlock pads every PrivateMessageContent with zeros to a multiple
	// of this many bytes (RFC 9420, Section 15.1); 0 or 1 means no padding.
	// At most [MaxPaddingBlock].
	PaddingBlock int
}

// MaxPaddingBlock bounds [ProtectorConfig.PaddingBlock].
const MaxPaddingBlock = 1 << 16

// NewMessageProtector returns the protector of one epoch.
func NewMessageProtector(cfg ProtectorConfig) (*MessageProtector, error) {
	if cfg.GroupContext == nil || cfg.Tree == nil {
		return nil, errors.New("mls: protector needs a GroupContext and a SecretTree")
	}
	gc, err := cfg.GroupContext.Marshal()
	if err != nil {
		return nil, err
	}
	cs := cfg.GroupContext.CipherSuite
	if !cs.Supported() {
		return nil, &UnsupportedCipherSuiteError{Suite: cs}
	}
	if cfg.PaddingBlock < 0 || cfg.PaddingBlock > MaxPaddingBlock {
		return nil, fmt.Errorf("mls: padding block %d out of range [0, %d]", cfg.PaddingBlock, MaxPaddingBlock)
	}
	return &MessageProtector{
		suite:            cs,
		groupContext:     gc,
		groupID:          append([]byte(nil), cfg.GroupContext.GroupID...),
		epoch:            cfg.GroupContext.Epoch,
		senderDataSecret: cfg.SenderDataSecret,
		membershipKey:    cfg.MembershipKey,
		tree:             cfg.Tree,
		paddingBlock:     cfg.PaddingBlock,
	}, nil
}

// NewEpochProtector returns the protector of the epoch whose GroupContext
// is gc and whose key schedule produced es, for a ratchet tree of nLeaves
// leaves: it builds the epoch's secret tree from es.EncryptionSecret with
// the default limits.
func NewEpochProtector(gc *GroupContext, es *EpochSecrets, nLeaves uint32, paddingBlock int) (*MessageProtector, error) {
	if gc == nil || es == nil {
		return nil, errors.New("mls: protector needs a GroupContext and EpochSecrets")
	}
	if es.Suite != gc.CipherSuite {
		return nil, fmt.Errorf("mls: epoch secrets of suite %v for a group of suite %v", es.Suite, gc.CipherSuite)
	}
	tree, err := NewSecretTree(gc.CipherSuite, es.EncryptionSecret, nLeaves)
	if err != nil {
		return nil, err
	}
	return NewMessageProtector(ProtectorConfig{
		GroupContext: gc, SenderDataSecret: es.SenderDataSecret, MembershipKey: es.MembershipKey,
		Tree: tree, PaddingBlock: paddingBlock,
	})
}

// SignerKeyFunc returns the signature public key of a message's sender: the
// leaf's signature_key for a member, the external_senders entry for an
// external sender, or the key in the message itself for a new member.
type SignerKeyFunc func(Sender) ([]byte, error)

// ratchetFor maps a content type to the sender's ratchet (RFC 9420,
// Section 9.1): application data uses the application ratchet, proposals
// and commits the handshake ratchet.
func ratchetFor(t ContentType) RatchetType {
	if t == ContentTypeApplication {
		return RatchetApplication
	}
	return RatchetHandshake
}

// content returns a FramedContent of this epoch from sender.
func (p *MessageProtector) content(sender Sender, authenticatedData []byte) FramedContent {
	return FramedContent{GroupID: p.groupID, Epoch: p.epoch, Sender: sender, AuthenticatedData: authenticatedData}
}

// Sign signs content (which must carry this epoch's group ID and epoch) for
// wire format wf.
func (p *MessageProtector) Sign(wf WireFormat, content *FramedContent, priv SignaturePrivateKey) (*AuthenticatedContent, error) {
	if err := p.checkEpoch(content.GroupID, content.Epoch); err != nil {
		return nil, err
	}
	return SignFramedContent(p.suite, wf, content, p.groupContext, priv)
}

// ProtectApplication signs and encrypts application data from the member at
// sender as a PrivateMessage. rand supplies the reuse guard.
func (p *MessageProtector) ProtectApplication(rand io.Reader, sender LeafIndex, priv SignaturePrivateKey, authenticatedData, data []byte) (*PrivateMessage, error) {
	c := p.content(MemberSender(sender), authenticatedData)
	c.ContentType = ContentTypeApplication
	c.ApplicationData = data
	ac, err := SignFramedContent(p.suite, WireFormatPrivateMessage, &c, p.groupContext, priv)
	if err != nil {
		return nil, err
	}
	return p.ProtectPrivate(rand, ac)
}

// ProtectPrivate encrypts signed content (wire format mls_private_message,
// member sender; for a commit with its confirmation tag set) with the next
// generation of the sender's ratchet.
func (p *MessageProtector) ProtectPrivate(rand io.Reader, ac *AuthenticatedContent) (*PrivateMessage, error) {
	if err := p.checkEpoch(ac.Content.GroupID, ac.Content.Epoch); err != nil {
		return nil, err
	}
	if ac.Content.Sender.SenderType != SenderTypeMember {
		return nil, fmt.Errorf("%w: PrivateMessage sender must be a member", ErrInvalidMessage)
	}
	if err := checkAuth(ac); err != nil {
		return nil, err
	}
	var guard [4]byte
	if _, err := io.ReadFull(rand, guard[:]); err != nil {
		return nil, fmt.Errorf("mls: reuse guard: %w", err)
	}
	gen, key, nonce, err := p.tree.Next(ac.Content.Sender.LeafIndex, ratchetFor(ac.Content.ContentType))
	if err != nil {
		return nil, err
	}
	defer clear(key)
	defer clear(nonce)
	return EncryptPrivateMessage(p.suite, ac, p.senderDataSecret, key, nonce, gen, guard, p.paddingBlock)
}

// ProtectPublic frames signed content (wire format mls_public_message) as a
// PublicMessage with its membership tag.
func (p *MessageProtector) ProtectPublic(ac *AuthenticatedContent) (*PublicMessage, error) {
	if err := p.checkEpoch(ac.Content.GroupID, ac.Content.Epoch); err != nil {
		return nil, err
	}
	if err := checkPublicSender(&ac.Content); err != nil {
		return nil, err
	}
	if err := checkAuth(ac); err != nil {
		return nil, err
	}
	return NewPublicMessage(p.suite, ac, p.membershipKey, p.groupContext)
}

// checkAuth refuses to send a commit whose confirmation tag is not set yet.
func checkAuth(ac *AuthenticatedContent) error {
	if ac.Content.ContentType == ContentTypeCommit && len(ac.Auth.ConfirmationTag) == 0 {
		return fmt.Errorf("%w: commit without confirmation tag", ErrInvalidMessage)
	}
	return nil
}

func (p *MessageProtector) checkEpoch(groupID []byte, epoch uint64) error {
	if !bytes.Equal(groupID, p.groupID) {
		return ErrWrongGroup
	}
	if epoch != p.epoch {
		return fmt.Errorf("%w: epoch %d, this epoch is %d", ErrWrongEpoch, epoch, p.epoch)
	}
	return nil
}

// UnprotectPrivate decrypts and verifies a PrivateMessage of this epoch:
// it opens the sender data, takes the sender's key for the generation named
// there, decrypts the content, checks the padding and verifies the
// signature with the key signerKey returns for the sender.
//
// Every member can derive every leaf's keys from the epoch's secret tree, so
// a member can encrypt content under another member's (leaf, generation)
// key; only the signature tells the forgery apart. The key is therefore
// consumed (erased, so that a replay fails with [ErrReplay]) only once the
// content has decrypted and passed every check here, signature included: a
// message rejected for any reason leaves the secret tree unchanged and the
// genuine message of that generation still decrypts.
func (p *MessageProtector) UnprotectPrivate(m *PrivateMessage, signerKey SignerKeyFunc) (*AuthenticatedContent, error) {
	if err := p.checkEpoch(m.GroupID, m.Epoch); err != nil {
		return nil, err
	}
	sd, err := m.OpenSenderData(p.suite, p.senderDataSecret)
	if err != nil {
		return nil, err
	}
	var ac *AuthenticatedContent
	err = p.tree.WithKey(sd.LeafIndex, ratchetFor(m.ContentType), sd.Generation, func(key, nonce []byte) error {
		c, err := m.DecryptContent(p.suite, sd, key, nonce)
		if err != nil {
			return err
		}
		if err := p.verify(c, signerKey); err != nil {
			return err
		}
		ac = c
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrGenerationConsumed) || errors.Is(err, ErrGenerationTooOld) {
			return nil, fmt.Errorf("%w: %w", ErrReplay, err)
		}
		return nil, err
	}
	return ac, nil
}

// UnprotectPublic verifies a PublicMessage of this epoch: the membership tag
// for a member sender, then the signature with the key signerKey returns.
func (p *MessageProtector) UnprotectPublic(m *PublicMessage, signerKey SignerKeyFunc) (*AuthenticatedContent, error) {
	if err := p.checkEpoch(m.Content.GroupID, m.Content.Epoch); err != nil {
		return nil, err
	}
	if err := m.VerifyMembershipTag(p.suite, p.membershipKey, p.groupContext); err != nil {
		return nil, err
	}
	return verifyPublicContent(p.suite, p.groupContext, m, signerKey)
}

// verifyPublicContent runs the checks of a PublicMessage that need no
// secret, as a member and an external observer ([PublicGroup]) do: the
// sender/content rules, the confirmation tag's presence on a commit, and
// the signature over groupContext (the serialized GroupContext of the
// epoch) with the key signerKey returns.
func verifyPublicContent(cs CipherSuite, groupContext []byte, m *PublicMessage, signerKey SignerKeyFunc) (*AuthenticatedContent, error) {
	ac := m.AuthenticatedContent()
	if err := checkPublicSender(&ac.Content); err != nil {
		return nil, err
	}
	if err := verifyContent(cs, groupContext, ac, signerKey); err != nil {
		return nil, err
	}
	return ac, nil
}

func (p *MessageProtector) verify(ac *AuthenticatedContent, signerKey SignerKeyFunc) error {
	return verifyContent(p.suite, p.groupContext, ac, signerKey)
}

// verifyContent checks that a commit carries a confirmation tag and
// verifies the content's signature with the sender's key.
func verifyContent(cs CipherSuite, groupContext []byte, ac *AuthenticatedContent, signerKey SignerKeyFunc) error {
	if err := checkAuth(ac); err != nil {
		return err
	}
	pub, err := signerKey(ac.Content.Sender)
	if err != nil {
		// The sender names no key we know (a blank leaf, an unknown
		// external sender): the message breaks a protocol rule.
		return fmt.Errorf("%w: signer key: %w", ErrInvalidMessage, err)
	}
	return ac.VerifySignature(cs, pub, groupContext)
}

// checkPublicSender enforces which content a PublicMessage may carry from
// which sender (RFC 9420, Sections 6 and 12.1.8): application data only in
// a PrivateMessage; external senders and new members propose, with a new
// member proposing only its own Add; a new_member_commit sender commits.
func checkPublicSender(c *FramedContent) error {
	if c.ContentType == ContentTypeApplication {
		return fmt.Errorf("%w: application data in a PublicMessage", ErrInvalidMessage)
	}
	ok := true
	switch c.Sender.SenderType {
	case SenderTypeExternal:
		ok = c.ContentType == ContentTypeProposal
	case SenderTypeNewMemberProposal:
		ok = c.ContentType == ContentTypeProposal && c.Proposal != nil && c.Proposal.ProposalType() == ProposalTypeAdd
	case SenderTypeNewMemberCommit:
		ok = c.ContentType == ContentTypeCommit
	}
	if !ok {
		return fmt.Errorf("%w: sender type %d may not send this content", ErrInvalidMessage, c.Sender.SenderType)
	}
	return nil
}
