package mls

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The official passive-client vectors (mls/testdata/mlswg) run through an
// observer: it bootstraps from the GroupInfo inside each case's Welcome
// (decrypted with the case's keys, as the observer itself never could)
// and processes every proposal and commit; after each step its public
// state must equal that of a member that joined by the Welcome and
// processed the same messages, whose epoch_authenticator the vectors fix.

// vectorHex is a hex string of the vector files.
type vectorHex []byte

func (h *vectorHex) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	d, err := hex.DecodeString(s)
	*h = d
	return err
}

type passiveVector struct {
	CipherSuite  uint16 `json:"cipher_suite"`
	ExternalPSKs []struct {
		PSKID vectorHex `json:"psk_id"`
		PSK   vectorHex `json:"psk"`
	} `json:"external_psks"`
	KeyPackage         vectorHex `json:"key_package"`
	SignaturePriv      vectorHex `json:"signature_priv"`
	EncryptionPriv     vectorHex `json:"encryption_priv"`
	InitPriv           vectorHex `json:"init_priv"`
	Welcome            vectorHex `json:"welcome"`
	RatchetTree        vectorHex `json:"ratchet_tree"`
	InitialEpochAuthen vectorHex `json:"initial_epoch_authenticator"`
	Epochs             []struct {
		Proposals          []vectorHex `json:"proposals"`
		Commit             vectorHex   `json:"commit"`
		EpochAuthenticator vectorHex   `json:"epoch_authenticator"`
	} `json:"epochs"`
}

// vectorPriv returns an HPKE private key of the vectors in the encoding
// this package expects: the P-521 scalars (suite 5) are written in minimal
// big-endian form there, so a key may lack its leading zero bytes.
func vectorPriv(cs CipherSuite, k []byte) []byte {
	if cs == 5 && len(k) < 66 {
		return append(make([]byte, 66-len(k)), k...)
	}
	return k
}

func TestPublicGroupPassiveClientVectors(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "mlswg", "passive-client-*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no passive-client vectors: %v", err)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var cases []passiveVector
			if err := json.Unmarshal(data, &cases); err != nil {
				t.Fatal(err)
			}
			passed, commits, skipped := 0, 0, map[string]int{}
			for i := range cases {
				n, skip, err := observePassiveVector(&cases[i])
				switch {
				case err != nil:
					t.Errorf("case %d (suite %d): %v", i, cases[i].CipherSuite, err)
				case skip != "":
					skipped[skip]++
				default:
					passed++
					commits += n
				}
			}
			for reason, n := range skipped {
				t.Logf("%d cases skipped: %s", n, reason)
			}
			if passed == 0 {
				t.Fatal("no case ran")
			}
			t.Logf("%d of %d cases passed, %d commits observed", passed, len(cases), commits)
		})
	}
}

// observePassiveVector runs one case; it returns the number of commits the
// observer processed, or a reason for skipping the case.
func observePassiveVector(c *passiveVector) (int, string, error) {
	cs := CipherSuite(c.CipherSuite)
	if !cs.Supported() {
		return 0, fmt.Sprintf("cipher suite %d not supported", c.CipherSuite), nil
	}
	kpMsg, err := UnmarshalMLSMessage(c.KeyPackage)
	if err != nil || kpMsg.KeyPackage == nil {
		return 0, "", fmt.Errorf("key_package: %v", err)
	}
	wMsg, err := UnmarshalMLSMessage(c.Welcome)
	if err != nil || wMsg.Welcome == nil {
		return 0, "", fmt.Errorf("welcome: %v", err)
	}
	sig, err := cs.NewSignaturePrivateKey(c.SignaturePriv)
	if err != nil {
		return 0, "", err
	}
	kb := &KeyPackageBundle{KeyPackage: kpMsg.KeyPackage, InitPriv: vectorPriv(cs, c.InitPriv),
		EncryptionKey: vectorPriv(cs, c.EncryptionPriv), SigningKey: sig}
	psks := func(id *PreSharedKeyID) ([]byte, bool) {
		for _, p := range c.ExternalPSKs {
			if id.PSKType == PSKTypeExternal && bytes.Equal(p.PSKID, id.PSKID) {
				return p.PSK, true
			}
		}
		return nil, false
	}
	cfg := GroupConfig{PSKs: psks, ResumptionPSKs: len(c.Epochs) + 1}
	g, err := JoinGroup(wMsg.Welcome, kb, &JoinOptions{Config: cfg, RatchetTree: c.RatchetTree})
	if err != nil {
		return 0, "", fmt.Errorf("member join: %w", err)
	}

	// The GroupInfo the committer signed, from inside the Welcome.
	ref, err := kb.KeyPackage.Ref()
	if err != nil {
		return 0, "", err
	}
	gs, err := wMsg.Welcome.DecryptGroupSecrets(ref, kb.InitPriv)
	if err != nil {
		return 0, "", err
	}
	psk, err := (&Group{publicState: publicState{cs: cs}, cfg: cfg}).pskSecret(gs.PSKs)
	if err != nil {
		return 0, "", err
	}
	ws, err := cs.WelcomeSecret(gs.JoinerSecret, psk)
	if err != nil {
		return 0, "", err
	}
	gi, err := wMsg.Welcome.DecryptGroupInfo(ws)
	if err != nil {
		return 0, "", err
	}
	var tree *Tree
	if len(c.RatchetTree) > 0 {
		if tree, err = DecodeTree(cs, c.RatchetTree); err != nil {
			return 0, "", err
		}
	}
	p, err := NewPublicGroup(gi, tree, nil)
	if err != nil {
		return 0, "", fmt.Errorf("observer bootstrap: %w", err)
	}
	if err := sameAsMember(p, g); err != nil {
		return 0, "", fmt.Errorf("after the join: %w", err)
	}
	for e, ep := range c.Epochs {
		for j, raw := range ep.Proposals {
			m, err := UnmarshalMLSMessage(raw)
			if err != nil {
				return 0, "", err
			}
			if m.WireFormat != WireFormatPublicMessage {
				return 0, "a proposal sent as a PrivateMessage, which an observer cannot read", nil
			}
			if p, _, err = p.ProcessProposal(m, time.Time{}); err != nil {
				return 0, "", fmt.Errorf("epoch %d proposal %d: observer: %w", e, j, err)
			}
			if _, err := g.ProcessMessage(m, nil); err != nil {
				return 0, "", fmt.Errorf("epoch %d proposal %d: member: %w", e, j, err)
			}
		}
		m, err := UnmarshalMLSMessage(ep.Commit)
		if err != nil {
			return 0, "", err
		}
		if m.WireFormat != WireFormatPublicMessage {
			return 0, "a commit sent as a PrivateMessage, which an observer cannot read", nil
		}
		if p, _, err = p.ProcessCommit(m, time.Time{}); err != nil {
			return 0, "", fmt.Errorf("epoch %d commit: observer: %w", e, err)
		}
		if _, err := g.ProcessMessage(m, nil); err != nil {
			return 0, "", fmt.Errorf("epoch %d commit: member: %w", e, err)
		}
		if !bytes.Equal(g.EpochAuthenticator(), ep.EpochAuthenticator) {
			return 0, "", fmt.Errorf("epoch %d: the member's epoch_authenticator differs from the vector's", e)
		}
		if err := sameAsMember(p, g); err != nil {
			return 0, "", fmt.Errorf("epoch %d: %w", e, err)
		}
	}
	return len(c.Epochs), "", nil
}

// sameAsMember compares an observer's public state with a member's.
func sameAsMember(p *PublicGroup, g *Group) error {
	pth, err := p.Tree().TreeHash()
	if err != nil {
		return err
	}
	gth, err := g.Tree().TreeHash()
	if err != nil {
		return err
	}
	switch {
	case !bytes.Equal(p.st.ctxBytes, g.ctxBytes):
		return fmt.Errorf("GroupContext differs")
	case !bytes.Equal(pth, gth):
		return fmt.Errorf("tree hash differs")
	case !bytes.Equal(p.InterimTranscriptHash(), g.interim):
		return fmt.Errorf("interim transcript hash differs")
	}
	return nil
}
