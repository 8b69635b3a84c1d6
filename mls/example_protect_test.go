package mls_test

import (
	"fmt"
	"math/rand/v2"

	"github.com/rhizome-chat/rhizome/mls"
)

// The group layer runs the key schedule for an epoch, builds one
// MessageProtector per epoch and member, and sends and receives through it.
func ExampleMessageProtector() {
	cs := mls.MLS128DHKEMX25519AES128GCMSHA256Ed25519
	rnd := rand.NewChaCha8([32]byte{1}) // a real client passes crypto/rand.Reader
	gc := &mls.GroupContext{Version: mls.ProtocolVersionMLS10, CipherSuite: cs, GroupID: []byte("room"),
		Epoch: 1, TreeHash: make([]byte, 32), ConfirmedTranscriptHash: make([]byte, 32)}
	gcBytes, _ := gc.Marshal()
	secrets, _ := cs.AdvanceEpoch(make([]byte, 32), nil, nil, gcBytes)

	alice, _ := mls.NewEpochProtector(gc, secrets, 2, 64)
	bob, _ := mls.NewEpochProtector(gc, secrets, 2, 64)
	alicePriv, alicePub, _ := cs.GenerateSignatureKeyPair(rnd)

	msg, _ := alice.ProtectApplication(rnd, 0, alicePriv, nil, []byte("hello, room"))
	wire, _ := (&mls.MLSMessage{Version: mls.ProtocolVersionMLS10, WireFormat: mls.WireFormatPrivateMessage, PrivateMessage: msg}).Marshal()

	in, _ := mls.UnmarshalMLSMessage(wire)
	signer := func(s mls.Sender) ([]byte, error) { return alicePub, nil } // from the ratchet tree
	ac, err := bob.UnprotectPrivate(in.PrivateMessage, signer)
	fmt.Printf("%s from leaf %d (%v)\n", ac.Content.ApplicationData, ac.Content.Sender.LeafIndex, err)

	_, err = bob.UnprotectPrivate(in.PrivateMessage, signer)
	fmt.Println(mls.RejectReason(err))
	// Output:
	// hello, room from leaf 0 (<nil>)
	// replay
}
