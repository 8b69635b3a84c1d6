package mls

import (
	"encoding/hex"
	"errors"
	"testing"

	"github.com/rhizome-chat/rhizome/internal/tlspl"
)

// TestWireRejects feeds hand-built malformed encodings to the decoders and
// checks the typed error each must return.
func TestWireRejects(t *testing.T) {
	t.Parallel()
	proposal := func(d []byte) error { _, err := UnmarshalProposal(d); return err }
	commit := func(d []byte) error { _, err := UnmarshalCommit(d); return err }
	message := func(d []byte) error { _, err := UnmarshalMLSMessage(d); return err }
	tree := func(d []byte) error { _, err := UnmarshalRatchetTree(d); return err }
	tests := []struct {
		name   string
		decode func([]byte) error
		hex    string
		want   error
	}{
		{"valid external init", proposal, "000601aa", nil},
		{"non-minimal varint", proposal, "00064001aa", tlspl.ErrMalformed},
		{"varint prefix 0b11", proposal, "0006c0000001aa", tlspl.ErrMalformed},
		{"vector longer than input", proposal, "000605aa", tlspl.ErrMalformed},
		{"trailing byte", proposal, "000601aa00", tlspl.ErrTrailingData},
		{"app_ephemeral proposal type", proposal, "0009", ErrUnknownValue},
		{"unknown proposal type", proposal, "ffff00", ErrUnknownValue},
		{"reserved proposal type", proposal, "0000", ErrUnknownValue},
		{"duplicate extension types", proposal, "000706000100000100", ErrDuplicateExtension},
		{"app data update op invalid", proposal, "00080000000100", ErrUnknownValue},
		{"app data update remove", proposal, "00080000000102", nil},
		{"self remove", proposal, "000a", nil},
		{"unknown credential type", func(d []byte) error { _, err := UnmarshalCredential(d); return err }, "000300", ErrUnknownValue},
		{"optional octet 2", commit, "0002", tlspl.ErrMalformed},
		{"ProposalOrRef type 3", commit, "010300", ErrUnknownValue},
		{"empty commit", commit, "0000", nil},
		{"MLS version 2", message, "00020001", ErrUnknownValue},
		{"unknown wire format", message, "00010006", ErrUnknownValue},
		{"private message content type 0", message, "00010002" + "00" + "0000000000000000" + "00" + "000000", ErrUnknownValue},
		{"public message sender type 5", message, "00010001" + "00" + "0000000000000000" + "05", ErrUnknownValue},
		{"leaf node source 0", func(d []byte) error { _, err := UnmarshalLeafNode(d); return err }, "0000" + "000100" + "0000000000" + "00", ErrUnknownValue},
		{"empty ratchet tree", tree, "00", tlspl.ErrMalformed},
		{"ratchet tree ends blank", tree, "0100", tlspl.ErrMalformed},
		{"node type 3", tree, "020103", ErrUnknownValue},
		{"unmerged leaves not uint32s", tree, "080102000003000000", tlspl.ErrMalformed},
		{"capabilities odd length", func(d []byte) error { _, err := UnmarshalRequiredCapabilities(d); return err }, "010000" + "00", tlspl.ErrMalformed},
		{"app data dictionary unsorted", func(d []byte) error { _, err := UnmarshalAppDataDictionary(d); return err }, "0a00000002000000000100", tlspl.ErrMalformed},
		{"app data dictionary duplicate", func(d []byte) error { _, err := UnmarshalAppDataDictionary(d); return err }, "0a00000001000000000100", tlspl.ErrMalformed},
		{"app data dictionary sorted", func(d []byte) error { _, err := UnmarshalAppDataDictionary(d); return err }, "0a00000001000000000200", nil},
		{"unknown psk type", func(d []byte) error { _, err := UnmarshalGroupSecrets(d); return err }, "0000" + "0103", tlspl.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := hex.DecodeString(tt.hex)
			if err != nil {
				t.Fatal(err)
			}
			err = tt.decode(data)
			switch {
			case tt.want == nil && err != nil:
				t.Fatalf("decode %s: %v, want success", tt.hex, err)
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Fatalf("decode %s: err = %v, want %v", tt.hex, err, tt.want)
			case tt.want != nil && RejectReason(err) != ReasonMalformed:
				t.Fatalf("RejectReason(%v) = %v, want malformed", err, RejectReason(err))
			}
		})
	}
}

// TestEncodeRejectsInvalidValues checks that the encoders refuse values the
// decoders would refuse.
func TestEncodeRejectsInvalidValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		enc  func() ([]byte, error)
	}{
		{"duplicate extensions", func() ([]byte, error) {
			return MarshalProposal(&GroupContextExtensionsProposal{Extensions: Extensions{{ExtensionType: 1}, {ExtensionType: 1}}})
		}},
		{"unknown credential type", func() ([]byte, error) { return (&Credential{CredentialType: 9}).Marshal() }},
		{"trailing blank node", func() ([]byte, error) { return RatchetTree{nil}.Marshal() }},
		{"empty tree", func() ([]byte, error) { return RatchetTree{}.Marshal() }},
		{"node with two bodies", func() ([]byte, error) {
			return RatchetTree{{Leaf: &LeafNode{}, Parent: &ParentNode{}}}.Marshal()
		}},
		{"nil proposal", func() ([]byte, error) { return MarshalProposal(nil) }},
		{"message without body", func() ([]byte, error) {
			return (&MLSMessage{Version: ProtocolVersionMLS10, WireFormat: WireFormatWelcome}).Marshal()
		}},
		{"unsorted app data", func() ([]byte, error) {
			return (&AppDataDictionary{ComponentData: []ComponentData{{ComponentID: 2}, {ComponentID: 1}}}).Marshal()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if out, err := tt.enc(); err == nil {
				t.Fatalf("encoded %x, want an error", out)
			}
		})
	}
}

func TestRejectReason(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want Reason
	}{
		{nil, ReasonNone},
		{&tlspl.DecodeError{What: "x", Err: tlspl.ErrTrailingData}, ReasonMalformed},
		{&UnknownValueError{Type: "WireFormat", Value: 9}, ReasonMalformed},
		{ErrBadMembershipTag, ReasonBadSignature},
		{ErrBadSignature, ReasonBadSignature},
		{ErrReplay, ReasonReplay},
		{ErrBadPadding, ReasonDecrypt},
		{ErrWrongEpoch, ReasonWrongEpoch},
		{&UnsupportedCipherSuiteError{Suite: 0x99}, ReasonUnsupported},
		{errors.New("local"), ReasonNone},
	}
	for _, tt := range tests {
		if got := RejectReason(tt.err); got != tt.want {
			t.Errorf("RejectReason(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
