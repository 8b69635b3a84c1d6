package mls

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// wireMessagesVectors loads mls/testdata/mlswg/messages.json as one map of
// field name to bytes per case.
func wireMessagesVectors(tb testing.TB) []map[string][]byte {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "mlswg", "messages.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var raw []map[string]string
	if err := json.Unmarshal(data, &raw); err != nil {
		tb.Fatal(err)
	}
	if len(raw) == 0 {
		tb.Fatal("messages.json holds no cases")
	}
	out := make([]map[string][]byte, len(raw))
	for i, c := range raw {
		out[i] = make(map[string][]byte, len(c))
		for k, v := range c {
			b, err := hex.DecodeString(v)
			if err != nil {
				tb.Fatalf("case %d field %s: %v", i, k, err)
			}
			out[i][k] = b
		}
	}
	return out
}

// TestMessagesVectorKeyPackages checks that every KeyPackage of
// messages.json verifies (both its own and its leaf's signature, over the
// received bytes) and that a flipped signature byte is caught.
func TestMessagesVectorKeyPackages(t *testing.T) {
	t.Parallel()
	for i, c := range wireMessagesVectors(t) {
		m, err := UnmarshalMLSMessage(c["mls_key_package"])
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		kp := m.KeyPackage
		if err := kp.Verify(); err != nil {
			t.Fatalf("case %d (suite %v): %v", i, kp.CipherSuite, err)
		}
		bad, err := UnmarshalKeyPackage(c["mls_key_package"][4:])
		if err != nil {
			t.Fatal(err)
		}
		bad.raw[len(bad.raw)-1] ^= 1
		bad.Signature[len(bad.Signature)-1] ^= 1
		if err := bad.Verify(); RejectReason(err) != ReasonBadSignature {
			t.Fatalf("case %d: tampered signature: err = %v", i, err)
		}
		// The Add proposal carries a KeyPackage too.
		p, err := UnmarshalProposal(append([]byte{0, 1}, c["add_proposal"]...))
		if err != nil {
			t.Fatal(err)
		}
		if err := p.(*AddProposal).KeyPackage.Verify(); err != nil {
			t.Fatalf("case %d: add proposal key package: %v", i, err)
		}
	}
}

// TestGroupContextMatchesKeyScheduleVector encodes GroupContext from the
// fields of key-schedule.json and compares with its group_context bytes.
func TestGroupContextMatchesKeyScheduleVector(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join("testdata", "mlswg", "key-schedule.json"))
	if err != nil {
		t.Fatal(err)
	}
	type hx = wireHex
	var cases []struct {
		CipherSuite uint16 `json:"cipher_suite"`
		GroupID     hx     `json:"group_id"`
		Epochs      []struct {
			TreeHash                hx `json:"tree_hash"`
			ConfirmedTranscriptHash hx `json:"confirmed_transcript_hash"`
			GroupContext            hx `json:"group_context"`
		} `json:"epochs"`
	}
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	n := 0
	for i, c := range cases {
		for e, ep := range c.Epochs {
			gc := GroupContext{
				Version: ProtocolVersionMLS10, CipherSuite: CipherSuite(c.CipherSuite), GroupID: c.GroupID,
				Epoch: uint64(e), TreeHash: ep.TreeHash, ConfirmedTranscriptHash: ep.ConfirmedTranscriptHash,
			}
			got, err := gc.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, ep.GroupContext) {
				t.Errorf("case %d epoch %d: GroupContext\n got %x\nwant %x", i, e, got, []byte(ep.GroupContext))
			}
			dec, err := UnmarshalGroupContext(ep.GroupContext)
			if err != nil || dec.Epoch != uint64(e) || !bytes.Equal(dec.GroupID, c.GroupID) {
				t.Errorf("case %d epoch %d: decode: %+v, %v", i, e, dec, err)
			}
			n++
		}
	}
	if n == 0 {
		t.Fatal("no epochs in key-schedule.json")
	}
}

// wireHex is a hex JSON string.
type wireHex []byte

func (h *wireHex) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	d, err := hex.DecodeString(s)
	*h = d
	return err
}
