package conformance

import (
	"fmt"

	"github.com/rhizome-chat/rhizome/mls"
)

func init() { register(KindWelcome, runWelcome) }

// welcomeCase is one case of welcome.json: a Welcome for a KeyPackage whose
// init private key is given, and the GroupInfo signer's public key.
type welcomeCase struct {
	CipherSuite uint16   `json:"cipher_suite"`
	InitPriv    hexBytes `json:"init_priv"`
	SignerPub   hexBytes `json:"signer_pub"`
	KeyPackage  hexBytes `json:"key_package"`
	Welcome     hexBytes `json:"welcome"`
}

func runWelcome(data []byte, r *Result) error {
	return runSuiteCases(data, r, func(c *welcomeCase) uint16 { return c.CipherSuite }, anyIndex(checkWelcome))
}

func checkWelcome(cs mls.CipherSuite, c *welcomeCase) error {
	kpMsg, err := mls.UnmarshalMLSMessage(c.KeyPackage)
	if err != nil || kpMsg.KeyPackage == nil {
		return fmt.Errorf("key_package: not an MLSMessage(KeyPackage): %v", err)
	}
	wMsg, err := mls.UnmarshalMLSMessage(c.Welcome)
	if err != nil || wMsg.Welcome == nil {
		return fmt.Errorf("welcome: not an MLSMessage(Welcome): %v", err)
	}
	kp, w := kpMsg.KeyPackage, wMsg.Welcome
	if kp.CipherSuite != cs || w.CipherSuite != cs {
		return fmt.Errorf("cipher suites %v/%v, want %v", kp.CipherSuite, w.CipherSuite, cs)
	}
	if err := kp.Verify(); err != nil {
		return fmt.Errorf("key package: %w", err)
	}
	ref, err := kp.Ref()
	if err != nil {
		return err
	}
	gs, err := w.DecryptGroupSecrets(ref, c.InitPriv)
	if err != nil {
		return err
	}
	if len(gs.PSKs) != 0 {
		return fmt.Errorf("GroupSecrets names %d PSKs; the vector format provides none", len(gs.PSKs))
	}
	welcomeSecret, err := cs.WelcomeSecret(gs.JoinerSecret, nil)
	if err != nil {
		return err
	}
	gi, err := w.DecryptGroupInfo(welcomeSecret)
	if err != nil {
		return err
	}
	if err := gi.Verify(c.SignerPub); err != nil {
		return err
	}
	// confirmation_tag = MAC(confirmation_key, confirmed_transcript_hash),
	// with confirmation_key from the key schedule over the GroupContext.
	gc, err := gi.GroupContext.Marshal()
	if err != nil {
		return err
	}
	secrets, err := cs.EpochSecretsFromJoiner(gs.JoinerSecret, nil, gc)
	if err != nil {
		return err
	}
	return mls.VerifyConfirmationTag(cs, secrets.ConfirmationKey, gi.GroupContext.ConfirmedTranscriptHash, gi.ConfirmationTag)
}
