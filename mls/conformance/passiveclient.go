package conformance

import (
	"bytes"
	"fmt"

	"github.com/rhizome-chat/rhizome/mls"
)

func init() { register(KindPassiveClient, runPassiveClient) }

// passiveClientCase is one case of a passive-client file (welcome,
// handling-commit, random, or any other file in that format): a client
// joins by Welcome with the given private keys and then follows the group
// through each epoch's proposals and commit, checking the
// epoch_authenticator after the join and after every commit.
type passiveClientCase struct {
	CipherSuite  uint16 `json:"cipher_suite"`
	ExternalPSKs []struct {
		PSKID hexBytes `json:"psk_id"`
		PSK   hexBytes `json:"psk"`
	} `json:"external_psks"`
	KeyPackage                hexBytes `json:"key_package"`
	SignaturePriv             hexBytes `json:"signature_priv"`
	EncryptionPriv            hexBytes `json:"encryption_priv"`
	InitPriv                  hexBytes `json:"init_priv"`
	Welcome                   hexBytes `json:"welcome"`
	RatchetTree               hexBytes `json:"ratchet_tree"`
	InitialEpochAuthenticator hexBytes `json:"initial_epoch_authenticator"`
	Epochs                    []struct {
		Proposals          []hexBytes `json:"proposals"`
		Commit             hexBytes   `json:"commit"`
		EpochAuthenticator hexBytes   `json:"epoch_authenticator"`
	} `json:"epochs"`
}

func runPassiveClient(data []byte, r *Result) error {
	return runSuiteCases(data, r, func(c *passiveClientCase) uint16 { return c.CipherSuite }, anyIndex(checkPassiveClient))
}

func checkPassiveClient(cs mls.CipherSuite, c *passiveClientCase) error {
	kpMsg, err := mls.UnmarshalMLSMessage(c.KeyPackage)
	if err != nil || kpMsg.KeyPackage == nil {
		return fmt.Errorf("key_package: not an MLSMessage(KeyPackage): %v", err)
	}
	wMsg, err := mls.UnmarshalMLSMessage(c.Welcome)
	if err != nil || wMsg.Welcome == nil {
		return fmt.Errorf("welcome: not an MLSMessage(Welcome): %v", err)
	}
	sig, err := cs.NewSignaturePrivateKey(c.SignaturePriv)
	if err != nil {
		return fmt.Errorf("signature_priv: %w", err)
	}
	kb := &mls.KeyPackageBundle{KeyPackage: kpMsg.KeyPackage, InitPriv: padHPKEPriv(cs, c.InitPriv),
		EncryptionKey: padHPKEPriv(cs, c.EncryptionPriv), SigningKey: sig}
	psks := func(id *mls.PreSharedKeyID) ([]byte, bool) {
		if id.PSKType != mls.PSKTypeExternal {
			return nil, false
		}
		for _, p := range c.ExternalPSKs {
			if bytes.Equal(p.PSKID, id.PSKID) {
				return p.PSK, true
			}
		}
		return nil, false
	}
	// Keep every epoch's resumption PSK: a long (random) sequence may
	// inject the resumption PSK of any earlier epoch.
	cfg := mls.GroupConfig{PSKs: psks, ResumptionPSKs: len(c.Epochs) + 1}
	g, err := mls.JoinGroup(wMsg.Welcome, kb, &mls.JoinOptions{Config: cfg, RatchetTree: c.RatchetTree})
	if err != nil {
		return fmt.Errorf("join: %w", err)
	}
	if !bytes.Equal(g.EpochAuthenticator(), c.InitialEpochAuthenticator) {
		return fmt.Errorf("epoch_authenticator after join differs")
	}
	for e, ep := range c.Epochs {
		for j, raw := range ep.Proposals {
			m, err := mls.UnmarshalMLSMessage(raw)
			if err != nil {
				return fmt.Errorf("epoch %d proposal %d: %w", e, j, err)
			}
			if _, err := g.ProcessMessage(m, nil); err != nil {
				return fmt.Errorf("epoch %d proposal %d: %w", e, j, err)
			}
		}
		m, err := mls.UnmarshalMLSMessage(ep.Commit)
		if err != nil {
			return fmt.Errorf("epoch %d commit: %w", e, err)
		}
		if _, err := g.ProcessMessage(m, nil); err != nil {
			return fmt.Errorf("epoch %d commit: %w", e, err)
		}
		if !bytes.Equal(g.EpochAuthenticator(), ep.EpochAuthenticator) {
			return fmt.Errorf("epoch %d: epoch_authenticator differs", e)
		}
	}
	return nil
}

// padHPKEPriv left-pads a P-521 private key to the 66 bytes of
// SerializePrivateKey: the generator of the published vectors wrote those
// scalars in minimal big-endian form, 65 bytes when the top byte is zero.
func padHPKEPriv(cs mls.CipherSuite, k []byte) []byte {
	if cs != mls.CipherSuite(5) || len(k) >= 66 {
		return k
	}
	return append(make([]byte, 66-len(k)), k...)
}
