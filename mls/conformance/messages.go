package conformance

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/rhizome-chat/rhizome/mls"
)

func init() { register(KindMessages, runMessages) }

// messagesCase is one case of messages.json: each field is one serialized
// wire struct (test-vectors.md, "Messages").
type messagesCase struct {
	MLSWelcome                     hexBytes `json:"mls_welcome"`
	MLSGroupInfo                   hexBytes `json:"mls_group_info"`
	MLSKeyPackage                  hexBytes `json:"mls_key_package"`
	RatchetTree                    hexBytes `json:"ratchet_tree"`
	GroupSecrets                   hexBytes `json:"group_secrets"`
	AddProposal                    hexBytes `json:"add_proposal"`
	UpdateProposal                 hexBytes `json:"update_proposal"`
	RemoveProposal                 hexBytes `json:"remove_proposal"`
	PreSharedKeyProposal           hexBytes `json:"pre_shared_key_proposal"`
	ReInitProposal                 hexBytes `json:"re_init_proposal"`
	ExternalInitProposal           hexBytes `json:"external_init_proposal"`
	GroupContextExtensionsProposal hexBytes `json:"group_context_extensions_proposal"`
	Commit                         hexBytes `json:"commit"`
	PublicMessageApplication       hexBytes `json:"public_message_application"`
	PublicMessageProposal          hexBytes `json:"public_message_proposal"`
	PublicMessageCommit            hexBytes `json:"public_message_commit"`
	PrivateMessage                 hexBytes `json:"private_message"`
}

type roundTrip struct {
	name string
	data []byte
	// check decodes data and re-encodes it.
	check func(data []byte) ([]byte, error)
}

// mlsMessageOf decodes an MLSMessage and checks its wire format.
func mlsMessageOf(wf mls.WireFormat) func([]byte) ([]byte, error) {
	return func(data []byte) ([]byte, error) {
		m, err := mls.UnmarshalMLSMessage(data)
		if err != nil {
			return nil, err
		}
		if m.WireFormat != wf {
			return nil, fmt.Errorf("wire format %d, want %d", m.WireFormat, wf)
		}
		return m.Marshal()
	}
}

// proposalBody round-trips a proposal body (the struct without its
// proposal_type) by decoding it as a Proposal of type t.
func proposalBody(t mls.ProposalType) func([]byte) ([]byte, error) {
	return func(data []byte) ([]byte, error) {
		framed := binary.BigEndian.AppendUint16(nil, uint16(t))
		p, err := mls.UnmarshalProposal(append(framed, data...))
		if err != nil {
			return nil, err
		}
		if p.ProposalType() != t {
			return nil, fmt.Errorf("proposal type %d, want %d", p.ProposalType(), t)
		}
		out, err := mls.MarshalProposal(p)
		if err != nil {
			return nil, err
		}
		return out[2:], nil
	}
}

func (c *messagesCase) roundTrips() []roundTrip {
	return []roundTrip{
		{"mls_welcome", c.MLSWelcome, mlsMessageOf(mls.WireFormatWelcome)},
		{"mls_group_info", c.MLSGroupInfo, mlsMessageOf(mls.WireFormatGroupInfo)},
		{"mls_key_package", c.MLSKeyPackage, mlsMessageOf(mls.WireFormatKeyPackage)},
		{"ratchet_tree", c.RatchetTree, func(d []byte) ([]byte, error) {
			t, err := mls.UnmarshalRatchetTree(d)
			if err != nil {
				return nil, err
			}
			return t.Marshal()
		}},
		{"group_secrets", c.GroupSecrets, func(d []byte) ([]byte, error) {
			g, err := mls.UnmarshalGroupSecrets(d)
			if err != nil {
				return nil, err
			}
			return g.Marshal()
		}},
		{"add_proposal", c.AddProposal, proposalBody(mls.ProposalTypeAdd)},
		{"update_proposal", c.UpdateProposal, proposalBody(mls.ProposalTypeUpdate)},
		{"remove_proposal", c.RemoveProposal, proposalBody(mls.ProposalTypeRemove)},
		{"pre_shared_key_proposal", c.PreSharedKeyProposal, proposalBody(mls.ProposalTypePreSharedKey)},
		{"re_init_proposal", c.ReInitProposal, proposalBody(mls.ProposalTypeReInit)},
		{"external_init_proposal", c.ExternalInitProposal, proposalBody(mls.ProposalTypeExternalInit)},
		{"group_context_extensions_proposal", c.GroupContextExtensionsProposal, proposalBody(mls.ProposalTypeGroupContextExtensions)},
		{"commit", c.Commit, func(d []byte) ([]byte, error) {
			m, err := mls.UnmarshalCommit(d)
			if err != nil {
				return nil, err
			}
			return m.Marshal()
		}},
		{"public_message_application", c.PublicMessageApplication, mlsMessageOf(mls.WireFormatPublicMessage)},
		{"public_message_proposal", c.PublicMessageProposal, mlsMessageOf(mls.WireFormatPublicMessage)},
		{"public_message_commit", c.PublicMessageCommit, mlsMessageOf(mls.WireFormatPublicMessage)},
		{"private_message", c.PrivateMessage, mlsMessageOf(mls.WireFormatPrivateMessage)},
	}
}

func runMessages(data []byte, r *Result) error {
	var cases []messagesCase
	if err := json.Unmarshal(data, &cases); err != nil {
		return err
	}
	for i := range cases {
		var fails []string
		for _, rt := range cases[i].roundTrips() {
			if rt.data == nil {
				fails = append(fails, rt.name+": missing")
				continue
			}
			out, err := rt.check(rt.data)
			if err != nil {
				fails = append(fails, fmt.Sprintf("%s: %v", rt.name, err))
				continue
			}
			if !bytes.Equal(out, rt.data) {
				fails = append(fails, rt.name+": re-encoding differs")
			}
		}
		if len(fails) > 0 {
			r.Fail("case %d: %v", i, fails)
			continue
		}
		r.Pass()
	}
	return nil
}
