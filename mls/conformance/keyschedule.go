package conformance

import (
	"bytes"
	"fmt"

	"github.com/rhizome-chat/rhizome/mls"
)

func init() { register(KindKeySchedule, runKeySchedule) }

type keyScheduleEpoch struct {
	TreeHash                hexBytes `json:"tree_hash"`
	CommitSecret            hexBytes `json:"commit_secret"`
	PSKSecret               hexBytes `json:"psk_secret"`
	ConfirmedTranscriptHash hexBytes `json:"confirmed_transcript_hash"`
	GroupContext            hexBytes `json:"group_context"`
	JoinerSecret            hexBytes `json:"joiner_secret"`
	WelcomeSecret           hexBytes `json:"welcome_secret"`
	InitSecret              hexBytes `json:"init_secret"`
	SenderDataSecret        hexBytes `json:"sender_data_secret"`
	EncryptionSecret        hexBytes `json:"encryption_secret"`
	ExporterSecret          hexBytes `json:"exporter_secret"`
	EpochAuthenticator      hexBytes `json:"epoch_authenticator"`
	ExternalSecret          hexBytes `json:"external_secret"`
	ConfirmationKey         hexBytes `json:"confirmation_key"`
	MembershipKey           hexBytes `json:"membership_key"`
	ResumptionPSK           hexBytes `json:"resumption_psk"`
	ExternalPub             hexBytes `json:"external_pub"`
	Exporter                struct {
		// The label is used as the literal string of the JSON field (its
		// hex digits), not hex-decoded: that is how the generator
		// (mlspp) computed the vector.
		Label   string   `json:"label"`
		Context hexBytes `json:"context"`
		Length  int      `json:"length"`
		Secret  hexBytes `json:"secret"`
	} `json:"exporter"`
}

type keyScheduleCase struct {
	CipherSuite       uint16             `json:"cipher_suite"`
	GroupID           hexBytes           `json:"group_id"`
	InitialInitSecret hexBytes           `json:"initial_init_secret"`
	Epochs            []keyScheduleEpoch `json:"epochs"`
}

func runKeySchedule(data []byte, r *Result) error {
	return runSuiteCases(data, r, func(c *keyScheduleCase) uint16 { return c.CipherSuite }, anyIndex(checkKeySchedule))
}

func checkKeySchedule(cs mls.CipherSuite, c *keyScheduleCase) error {
	if len(c.Epochs) == 0 {
		return fmt.Errorf("no epochs")
	}
	init := []byte(c.InitialInitSecret)
	for n, ep := range c.Epochs {
		// The group_context bytes are the GroupContext of this epoch with
		// no extensions (test-vectors.md): our encoding must agree.
		gc := mls.GroupContext{
			Version:                 mls.ProtocolVersionMLS10,
			CipherSuite:             cs,
			GroupID:                 c.GroupID,
			Epoch:                   uint64(n),
			TreeHash:                ep.TreeHash,
			ConfirmedTranscriptHash: ep.ConfirmedTranscriptHash,
		}
		gcBytes, err := gc.Marshal()
		if err != nil || !bytes.Equal(gcBytes, ep.GroupContext) {
			return fmt.Errorf("epoch %d: GroupContext encodes as %x, %v; want %x", n, gcBytes, err, ep.GroupContext)
		}
		es, err := cs.AdvanceEpoch(init, ep.CommitSecret, ep.PSKSecret, ep.GroupContext)
		if err != nil {
			return fmt.Errorf("epoch %d: %v", n, err)
		}
		checks := []struct {
			name      string
			got, want []byte
		}{
			{"joiner_secret", es.JoinerSecret, ep.JoinerSecret},
			{"welcome_secret", es.WelcomeSecret, ep.WelcomeSecret},
			{"init_secret", es.InitSecret, ep.InitSecret},
			{"sender_data_secret", es.SenderDataSecret, ep.SenderDataSecret},
			{"encryption_secret", es.EncryptionSecret, ep.EncryptionSecret},
			{"exporter_secret", es.ExporterSecret, ep.ExporterSecret},
			{"epoch_authenticator", es.EpochAuthenticator, ep.EpochAuthenticator},
			{"external_secret", es.ExternalSecret, ep.ExternalSecret},
			{"confirmation_key", es.ConfirmationKey, ep.ConfirmationKey},
			{"membership_key", es.MembershipKey, ep.MembershipKey},
			{"resumption_psk", es.ResumptionPSK, ep.ResumptionPSK},
		}
		for _, ch := range checks {
			if !bytes.Equal(ch.got, ch.want) {
				return fmt.Errorf("epoch %d: %s = %x, want %x", n, ch.name, ch.got, ch.want)
			}
		}
		// A joiner that learns joiner_secret from a Welcome reaches the
		// same epoch.
		joined, err := cs.EpochSecretsFromJoiner(ep.JoinerSecret, ep.PSKSecret, ep.GroupContext)
		if err != nil || !bytes.Equal(joined.EpochAuthenticator, ep.EpochAuthenticator) {
			return fmt.Errorf("epoch %d: joiner path: epoch_authenticator %x, %v", n, joined.EpochAuthenticator, err)
		}
		_, pub, err := es.ExternalKeyPair()
		if err != nil {
			return fmt.Errorf("epoch %d: external key pair: %v", n, err)
		}
		if !bytes.Equal(pub, ep.ExternalPub) {
			return fmt.Errorf("epoch %d: external_pub = %x, want %x", n, pub, ep.ExternalPub)
		}
		x := ep.Exporter
		out, err := es.Exporter(x.Label, x.Context, x.Length)
		if err != nil {
			return fmt.Errorf("epoch %d: exporter: %v", n, err)
		}
		if !bytes.Equal(out, x.Secret) {
			return fmt.Errorf("epoch %d: exporter = %x, want %x", n, out, x.Secret)
		}
		init = ep.InitSecret
	}
	return nil
}
