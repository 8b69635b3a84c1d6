package mls

import (
	"fmt"
)

// The key schedule of RFC 9420, Section 8. KDF.Extract takes its salt from
// the top and its input keying material from the left:
//
//	                 init_secret_[n-1]
//	                       |
//	                       V
//	commit_secret --> KDF.Extract
//	                       |
//	                       V
//	     ExpandWithLabel(., "joiner", GroupContext_[n], KDF.Nh)
//	                       |
//	                       V
//	                  joiner_secret
//	                       |
//	                       V
//	psk_secret (or 0) --> KDF.Extract
//	                       |
//	                       +--> DeriveSecret(., "welcome") = welcome_secret
//	                       V
//	     ExpandWithLabel(., "epoch", GroupContext_[n], KDF.Nh)
//	                       |
//	                       V
//	                  epoch_secret
//	                       |
//	                       +--> DeriveSecret(., <label>) = <secret>
//	                       V
//	          DeriveSecret(., "init") = init_secret_[n]
//
// GroupContext_[n] enters as its TLS serialization; callers pass the bytes
// (the GroupContext struct lives with the wire code).

// EpochSecrets holds the secrets of one epoch (RFC 9420, Section 8, Table 4).
// epoch_secret itself is not kept: everything derived from it is here.
type EpochSecrets struct {
	Suite CipherSuite

	JoinerSecret  []byte // goes into GroupSecrets of a Welcome
	WelcomeSecret []byte // protects the Welcome's GroupInfo

	SenderDataSecret   []byte // "sender data"
	EncryptionSecret   []byte // "encryption": root of the secret tree
	ExporterSecret     []byte // "exporter"
	ExternalSecret     []byte // "external": seed of external_pub
	ConfirmationKey    []byte // "confirm"
	MembershipKey      []byte // "membership"
	ResumptionPSK      []byte // "resumption"
	EpochAuthenticator []byte // "authentication"
	InitSecret         []byte // "init": init_secret of the next epoch
}

// zeroIfNil returns Nh zero bytes for a nil secret: RFC 9420 writes "0" for
// an all-zero commit_secret or psk_secret, which is not the same KDF input as
// an empty string.
func zeroIfNil(secret []byte, nh int) []byte {
	if secret == nil {
		return make([]byte, nh)
	}
	return secret
}

// checkSecretLen rejects a secret that is not Nh bytes long.
func checkSecretLen(name string, secret []byte, nh int) error {
	if len(secret) != nh {
		return fmt.Errorf("mls: %s is %d bytes, want %d", name, len(secret), nh)
	}
	return nil
}

// JoinerSecret computes joiner_secret =
// ExpandWithLabel(KDF.Extract(init_secret, commit_secret), "joiner",
// GroupContext, Nh). A nil commitSecret stands for Nh zero bytes (a commit
// without a path).
func (cs CipherSuite) JoinerSecret(initSecret, commitSecret, groupContext []byte) ([]byte, error) {
	p, err := cs.params()
	if err != nil {
		return nil, err
	}
	commitSecret = zeroIfNil(commitSecret, p.nh)
	if err := checkSecretLen("init_secret", initSecret, p.nh); err != nil {
		return nil, err
	}
	if err := checkSecretLen("commit_secret", commitSecret, p.nh); err != nil {
		return nil, err
	}
	prk, err := cs.Extract(initSecret, commitSecret)
	if err != nil {
		return nil, err
	}
	defer clear(prk)
	return cs.ExpandWithLabel(prk, "joiner", groupContext, p.nh)
}

// memberPRK is KDF.Extract(joiner_secret, psk_secret), the shared input of
// welcome_secret and epoch_secret.
func (cs CipherSuite) memberPRK(joinerSecret, pskSecret []byte) ([]byte, error) {
	p, err := cs.params()
	if err != nil {
		return nil, err
	}
	pskSecret = zeroIfNil(pskSecret, p.nh)
	if err := checkSecretLen("joiner_secret", joinerSecret, p.nh); err != nil {
		return nil, err
	}
	if err := checkSecretLen("psk_secret", pskSecret, p.nh); err != nil {
		return nil, err
	}
	return cs.Extract(joinerSecret, pskSecret)
}

// WelcomeSecret computes welcome_secret =
// DeriveSecret(KDF.Extract(joiner_secret, psk_secret), "welcome"). A nil
// pskSecret stands for Nh zero bytes (no PSKs).
func (cs CipherSuite) WelcomeSecret(joinerSecret, pskSecret []byte) ([]byte, error) {
	prk, err := cs.memberPRK(joinerSecret, pskSecret)
	if err != nil {
		return nil, err
	}
	defer clear(prk)
	return cs.DeriveSecret(prk, "welcome")
}

// WelcomeKeyNonce derives the AEAD key and nonce that encrypt a Welcome's
// GroupInfo (RFC 9420, Section 12.4.3.1): welcome_key =
// ExpandWithLabel(welcome_secret, "key", "", Nk) and welcome_nonce =
// ExpandWithLabel(welcome_secret, "nonce", "", Nn).
func (cs CipherSuite) WelcomeKeyNonce(welcomeSecret []byte) (key, nonce []byte, err error) {
	p, err := cs.params()
	if err != nil {
		return nil, nil, err
	}
	if key, err = cs.ExpandWithLabel(welcomeSecret, "key", nil, p.nk); err != nil {
		return nil, nil, err
	}
	if nonce, err = cs.ExpandWithLabel(welcomeSecret, "nonce", nil, p.nn); err != nil {
		return nil, nil, err
	}
	return key, nonce, nil
}

// derivedFields lists the secrets derived from epoch_secret (RFC 9420,
// Section 8, Table 4) with where each goes.
func (e *EpochSecrets) derivedFields() []struct {
	label string
	dst   *[]byte
} {
	return []struct {
		label string
		dst   *[]byte
	}{
		{"sender data", &e.SenderDataSecret},
		{"encryption", &e.EncryptionSecret},
		{"exporter", &e.ExporterSecret},
		{"external", &e.ExternalSecret},
		{"confirm", &e.ConfirmationKey},
		{"membership", &e.MembershipKey},
		{"resumption", &e.ResumptionPSK},
		{"authentication", &e.EpochAuthenticator},
		{"init", &e.InitSecret},
	}
}

// EpochSecretsFromJoiner runs the key schedule from joiner_secret: the path
// of a new member that learnt joiner_secret from a Welcome's GroupSecrets,
// and the second half of [CipherSuite.AdvanceEpoch]. groupContext is the
// serialized GroupContext of the new epoch. A nil pskSecret stands for Nh
// zero bytes (no PSKs).
func (cs CipherSuite) EpochSecretsFromJoiner(joinerSecret, pskSecret, groupContext []byte) (*EpochSecrets, error) {
	prk, err := cs.memberPRK(joinerSecret, pskSecret)
	if err != nil {
		return nil, err
	}
	defer clear(prk)
	e := &EpochSecrets{Suite: cs, JoinerSecret: append([]byte(nil), joinerSecret...)}
	if e.WelcomeSecret, err = cs.DeriveSecret(prk, "welcome"); err != nil {
		return nil, err
	}
	epochSecret, err := cs.ExpandWithLabel(prk, "epoch", groupContext, cs.Nh())
	if err != nil {
		return nil, err
	}
	defer clear(epochSecret)
	for _, f := range e.derivedFields() {
		if *f.dst, err = cs.DeriveSecret(epochSecret, f.label); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// AdvanceEpoch runs the whole key schedule for a new epoch: from the previous
// epoch's init_secret (or a fresh random one for epoch 0, or the one an
// external init produced), the commit_secret of the commit's UpdatePath (nil
// for none), the psk_secret of its PSK proposals (nil for none, see
// [CipherSuite.PSKSecret]) and the serialized GroupContext of the new epoch.
func (cs CipherSuite) AdvanceEpoch(initSecret, commitSecret, pskSecret, groupContext []byte) (*EpochSecrets, error) {
	joiner, err := cs.JoinerSecret(initSecret, commitSecret, groupContext)
	if err != nil {
		return nil, err
	}
	defer clear(joiner)
	return cs.EpochSecretsFromJoiner(joiner, pskSecret, groupContext)
}

// ExternalKeyPair derives the epoch's external HPKE key pair,
// DeriveKeyPair(external_secret) (RFC 9420, Section 8.3); the public half is
// the external_pub of GroupInfo's external_pub extension.
func (e *EpochSecrets) ExternalKeyPair() (priv, pub []byte, err error) {
	return e.Suite.DeriveKeyPair(e.ExternalSecret)
}

// Exporter is MLS-Exporter(label, context, length) =
// ExpandWithLabel(DeriveSecret(exporter_secret, label), "exported",
// Hash(context), length) (RFC 9420, Section 8.5).
func (e *EpochSecrets) Exporter(label string, context []byte, length int) ([]byte, error) {
	return e.Suite.Exporter(e.ExporterSecret, label, context, length)
}

// Exporter is MLS-Exporter over an explicit exporter_secret; see
// [EpochSecrets.Exporter].
func (cs CipherSuite) Exporter(exporterSecret []byte, label string, context []byte, length int) ([]byte, error) {
	derived, err := cs.DeriveSecret(exporterSecret, label)
	if err != nil {
		return nil, err
	}
	defer clear(derived)
	return cs.ExpandWithLabel(derived, "exported", cs.Hash(context), length)
}

// Erase overwrites every secret with zeros. Call it when the epoch's secrets
// are no longer needed (RFC 9420, Section 9.2 asks implementations to delete
// old secrets).
func (e *EpochSecrets) Erase() {
	clear(e.JoinerSecret)
	clear(e.WelcomeSecret)
	for _, f := range e.derivedFields() {
		clear(*f.dst)
	}
}
