package conformance

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/rhizome-chat/rhizome/mls"
)

func init() { register(KindMessageProtection, runMessageProtection) }

// messageProtectionCase is one case of message-protection.json: an epoch's
// secrets and a proposal, a commit and application data, each protected as
// PublicMessage (except application data) and PrivateMessage by leaf 1 of a
// two-leaf group.
type messageProtectionCase struct {
	CipherSuite             uint16   `json:"cipher_suite"`
	GroupID                 hexBytes `json:"group_id"`
	Epoch                   uint64   `json:"epoch"`
	TreeHash                hexBytes `json:"tree_hash"`
	ConfirmedTranscriptHash hexBytes `json:"confirmed_transcript_hash"`
	SignaturePriv           hexBytes `json:"signature_priv"`
	SignaturePub            hexBytes `json:"signature_pub"`
	EncryptionSecret        hexBytes `json:"encryption_secret"`
	SenderDataSecret        hexBytes `json:"sender_data_secret"`
	MembershipKey           hexBytes `json:"membership_key"`
	Proposal                hexBytes `json:"proposal"`
	ProposalPub             hexBytes `json:"proposal_pub"`
	ProposalPriv            hexBytes `json:"proposal_priv"`
	Commit                  hexBytes `json:"commit"`
	CommitPub               hexBytes `json:"commit_pub"`
	CommitPriv              hexBytes `json:"commit_priv"`
	Application             hexBytes `json:"application"`
	ApplicationPriv         hexBytes `json:"application_priv"`
}

// The vectors' sender is leaf 1 of a group of two (test-vectors.md).
const (
	mpSender  = mls.LeafIndex(1)
	mpNLeaves = 2
)

func runMessageProtection(data []byte, r *Result) error {
	return runSuiteCases(data, r, func(c *messageProtectionCase) uint16 { return c.CipherSuite }, anyIndex(checkMessageProtection))
}

// newProtector returns a protector over a fresh secret tree of the case.
func (c *messageProtectionCase) newProtector(cs mls.CipherSuite) (*mls.MessageProtector, error) {
	tree, err := mls.NewSecretTree(cs, c.EncryptionSecret, mpNLeaves)
	if err != nil {
		return nil, err
	}
	return mls.NewMessageProtector(mls.ProtectorConfig{
		GroupContext: &mls.GroupContext{
			Version: mls.ProtocolVersionMLS10, CipherSuite: cs, GroupID: c.GroupID, Epoch: c.Epoch,
			TreeHash: c.TreeHash, ConfirmedTranscriptHash: c.ConfirmedTranscriptHash,
		},
		SenderDataSecret: c.SenderDataSecret,
		MembershipKey:    c.MembershipKey,
		Tree:             tree,
	})
}

func (c *messageProtectionCase) signerKey(s mls.Sender) ([]byte, error) {
	if s.SenderType != mls.SenderTypeMember || s.LeafIndex != mpSender {
		return nil, fmt.Errorf("unexpected sender %+v", s)
	}
	return c.SignaturePub, nil
}

// contentBody returns the serialized body of ac: the Proposal, the Commit
// or the application data.
func contentBody(ac *mls.AuthenticatedContent) ([]byte, error) {
	switch ac.Content.ContentType {
	case mls.ContentTypeProposal:
		return mls.MarshalProposal(ac.Content.Proposal)
	case mls.ContentTypeCommit:
		return ac.Content.Commit.Marshal()
	default:
		return ac.Content.ApplicationData, nil
	}
}

// unprotect decodes an MLSMessage and unprotects it with p.
func (c *messageProtectionCase) unprotect(p *mls.MessageProtector, msg []byte) (*mls.AuthenticatedContent, error) {
	m, err := mls.UnmarshalMLSMessage(msg)
	if err != nil {
		return nil, err
	}
	switch m.WireFormat {
	case mls.WireFormatPublicMessage:
		return p.UnprotectPublic(m.PublicMessage, c.signerKey)
	case mls.WireFormatPrivateMessage:
		return p.UnprotectPrivate(m.PrivateMessage, c.signerKey)
	}
	return nil, fmt.Errorf("wire format %d", m.WireFormat)
}

func checkMessageProtection(cs mls.CipherSuite, c *messageProtectionCase) error {
	priv, err := cs.NewSignaturePrivateKey(c.SignaturePriv)
	if err != nil {
		return err
	}
	// One sender and one receiver for our own messages: the secret tree
	// hands out each key once.
	ourSend, err := c.newProtector(cs)
	if err != nil {
		return err
	}
	ourRecv, err := c.newProtector(cs)
	if err != nil {
		return err
	}
	proposal, err := mls.UnmarshalProposal(c.Proposal)
	if err != nil {
		return fmt.Errorf("proposal: %w", err)
	}
	commit, err := mls.UnmarshalCommit(c.Commit)
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	contents := []struct {
		name   string
		body   []byte
		pub    []byte // nil for application data
		priv   []byte
		fill   func(*mls.FramedContent)
		commit bool
	}{
		{"proposal", c.Proposal, c.ProposalPub, c.ProposalPriv, func(f *mls.FramedContent) {
			f.ContentType, f.Proposal = mls.ContentTypeProposal, proposal
		}, false},
		{"commit", c.Commit, c.CommitPub, c.CommitPriv, func(f *mls.FramedContent) {
			f.ContentType, f.Commit = mls.ContentTypeCommit, commit
		}, true},
		{"application", c.Application, nil, c.ApplicationPriv, func(f *mls.FramedContent) {
			f.ContentType, f.ApplicationData = mls.ContentTypeApplication, c.Application
		}, false},
	}
	rand := &vectorRand{}
	for _, x := range contents {
		// The vector's messages must unprotect to the vector's content. Each
		// was protected independently (all at generation 0), so each gets a
		// fresh receiver.
		recv, err := c.newProtector(cs)
		if err != nil {
			return err
		}
		vecMsgs := [][]byte{x.priv}
		if x.pub != nil {
			vecMsgs = append(vecMsgs, x.pub)
		}
		for _, msg := range vecMsgs {
			ac, err := c.unprotect(recv, msg)
			if err != nil {
				return fmt.Errorf("%s: unprotect vector message: %w", x.name, err)
			}
			if err := checkBody(ac, x.body); err != nil {
				return fmt.Errorf("%s: vector message: %w", x.name, err)
			}
		}
		// A replay of the vector's PrivateMessage must fail.
		if _, err := c.unprotect(recv, x.priv); !errors.Is(err, mls.ErrReplay) {
			return fmt.Errorf("%s: replayed PrivateMessage: err = %v, want ErrReplay", x.name, err)
		}
		// Protect then unprotect, as PrivateMessage and (handshake only)
		// PublicMessage.
		wfs := []mls.WireFormat{mls.WireFormatPrivateMessage}
		if x.pub != nil {
			wfs = append(wfs, mls.WireFormatPublicMessage)
		}
		for _, wf := range wfs {
			fc := mls.FramedContent{GroupID: c.GroupID, Epoch: c.Epoch, Sender: mls.MemberSender(mpSender)}
			x.fill(&fc)
			ac, err := ourSend.Sign(wf, &fc, priv)
			if err != nil {
				return fmt.Errorf("%s: sign: %w", x.name, err)
			}
			if x.commit {
				// Any MAC-sized tag: the confirmation key of the next
				// epoch is not part of this vector.
				ac.Auth.ConfirmationTag = cs.Hash([]byte("confirmation tag"))
			}
			var wire mls.MLSMessage
			wire.Version, wire.WireFormat = mls.ProtocolVersionMLS10, wf
			if wf == mls.WireFormatPrivateMessage {
				wire.PrivateMessage, err = ourSend.ProtectPrivate(rand, ac)
			} else {
				wire.PublicMessage, err = ourSend.ProtectPublic(ac)
			}
			if err != nil {
				return fmt.Errorf("%s: protect: %w", x.name, err)
			}
			enc, err := wire.Marshal()
			if err != nil {
				return err
			}
			got, err := c.unprotect(ourRecv, enc)
			if err != nil {
				return fmt.Errorf("%s: unprotect own wire format %d: %w", x.name, wf, err)
			}
			if err := checkBody(got, x.body); err != nil {
				return fmt.Errorf("%s: own wire format %d: %w", x.name, wf, err)
			}
		}
	}
	return nil
}

func checkBody(ac *mls.AuthenticatedContent, want []byte) error {
	got, err := contentBody(ac)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("content %x, want %x", got, want)
	}
	return nil
}
