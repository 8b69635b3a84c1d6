package mls

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// Fuzz targets for every decoder of peer bytes. Each decodes the input and,
// if that succeeds, encodes the result: the bytes must come back unchanged
// (strict decoding makes the encoding canonical); otherwise the error must
// be a typed decode error. Seeds come from messages.json and from the
// random generators of the round-trip tests.

func wireCodecByName(tb testing.TB, name string) wireCodec {
	for _, c := range wireCodecs() {
		if c.name == name {
			return c
		}
	}
	tb.Fatalf("no codec %s", name)
	return wireCodec{}
}

// wireFuzz runs the decode/re-encode property for the codec name, seeded with
// the vector fields picked by seeds and with random values.
func wireFuzz(f *testing.F, name string, seeds func(c map[string][]byte) [][]byte) {
	codec := wireCodecByName(f, name)
	if seeds != nil {
		for _, c := range wireMessagesVectors(f)[:20] {
			for _, s := range seeds(c) {
				f.Add(s)
			}
		}
	}
	r := rand.New(rand.NewPCG(7, 7))
	for range 8 {
		enc, err := codec.gen(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := codec.reencode(data)
		if err != nil {
			if !isDecodeError(err) {
				t.Fatalf("untyped error %T: %v", err, err)
			}
			return
		}
		if !bytes.Equal(out, data) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", out, data)
		}
	})
}

// body strips the MLSMessage header (version and wire format).
func body(b []byte) []byte {
	if len(b) < 4 {
		return b
	}
	return b[4:]
}

func withType(t ProposalType, b []byte) []byte {
	return append([]byte{byte(t >> 8), byte(t)}, b...)
}

func FuzzMLSMessage(f *testing.F) {
	wireFuzz(f, "MLSMessage", func(c map[string][]byte) [][]byte {
		return [][]byte{c["mls_welcome"], c["mls_group_info"], c["mls_key_package"], c["public_message_application"],
			c["public_message_proposal"], c["public_message_commit"], c["private_message"]}
	})
}

func FuzzKeyPackage(f *testing.F) {
	wireFuzz(f, "KeyPackage", func(c map[string][]byte) [][]byte { return [][]byte{body(c["mls_key_package"])} })
}

func FuzzLeafNode(f *testing.F) {
	wireFuzz(f, "LeafNode", func(c map[string][]byte) [][]byte { return [][]byte{c["update_proposal"]} })
}

func FuzzCredential(f *testing.F) { wireFuzz(f, "Credential", nil) }

func FuzzGroupContext(f *testing.F) { wireFuzz(f, "GroupContext", nil) }

func FuzzProposal(f *testing.F) {
	wireFuzz(f, "Proposal", func(c map[string][]byte) [][]byte {
		return [][]byte{
			withType(ProposalTypeAdd, c["add_proposal"]),
			withType(ProposalTypeUpdate, c["update_proposal"]),
			withType(ProposalTypeRemove, c["remove_proposal"]),
			withType(ProposalTypePreSharedKey, c["pre_shared_key_proposal"]),
			withType(ProposalTypeReInit, c["re_init_proposal"]),
			withType(ProposalTypeExternalInit, c["external_init_proposal"]),
			withType(ProposalTypeGroupContextExtensions, c["group_context_extensions_proposal"]),
		}
	})
}

func FuzzCommit(f *testing.F) {
	wireFuzz(f, "Commit", func(c map[string][]byte) [][]byte { return [][]byte{c["commit"]} })
}

func FuzzUpdatePath(f *testing.F) { wireFuzz(f, "UpdatePath", nil) }

func FuzzRatchetTree(f *testing.F) {
	wireFuzz(f, "RatchetTree", func(c map[string][]byte) [][]byte { return [][]byte{c["ratchet_tree"]} })
}

func FuzzAuthenticatedContent(f *testing.F) { wireFuzz(f, "AuthenticatedContent", nil) }

func FuzzPublicMessage(f *testing.F) {
	wireFuzz(f, "PublicMessage", func(c map[string][]byte) [][]byte {
		return [][]byte{body(c["public_message_application"]), body(c["public_message_proposal"]), body(c["public_message_commit"])}
	})
}

func FuzzPrivateMessage(f *testing.F) {
	wireFuzz(f, "PrivateMessage", func(c map[string][]byte) [][]byte { return [][]byte{body(c["private_message"])} })
}

func FuzzWelcome(f *testing.F) {
	wireFuzz(f, "Welcome", func(c map[string][]byte) [][]byte { return [][]byte{body(c["mls_welcome"])} })
}

func FuzzGroupInfo(f *testing.F) {
	wireFuzz(f, "GroupInfo", func(c map[string][]byte) [][]byte { return [][]byte{body(c["mls_group_info"])} })
}

func FuzzGroupSecrets(f *testing.F) {
	wireFuzz(f, "GroupSecrets", func(c map[string][]byte) [][]byte { return [][]byte{c["group_secrets"]} })
}

// FuzzExtensionData fuzzes the decoders of extension contents (the first
// byte selects which), each with the same re-encoding property.
func FuzzExtensionData(f *testing.F) {
	f.Add(byte(0), []byte{0x06, 0, 1, 0, 0, 0, 0})
	f.Add(byte(1), []byte{0x0a, 0, 0, 0, 1, 0, 0, 0, 0, 2, 0})
	f.Add(byte(2), []byte{0x05, 0x01, 0xaa, 0, 1, 0})
	f.Add(byte(3), []byte{0x02, 0xab, 0xcd})
	f.Fuzz(func(t *testing.T, which byte, data []byte) {
		var out []byte
		var err error
		switch which % 4 {
		case 0:
			var v *RequiredCapabilities
			if v, err = UnmarshalRequiredCapabilities(data); err == nil {
				out, err = v.Marshal()
			}
		case 1:
			var v *AppDataDictionary
			if v, err = UnmarshalAppDataDictionary(data); err == nil {
				out, err = v.Marshal()
			}
		case 2:
			var v ExternalSenders
			if v, err = UnmarshalExternalSenders(data); err == nil {
				out, err = v.Marshal()
			}
		case 3:
			var v *ExternalPub
			if v, err = UnmarshalExternalPub(data); err == nil {
				out, err = v.Marshal()
			}
		}
		if err != nil {
			if !isDecodeError(err) {
				t.Fatalf("untyped error %T: %v", err, err)
			}
			return
		}
		if !bytes.Equal(out, data) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", out, data)
		}
	})
}

// FuzzPrivateMessageContent fuzzes the decoder of decrypted content (what
// a member who holds the key parses), including the zero-padding check.
func FuzzPrivateMessageContent(f *testing.F) {
	f.Add(byte(1), []byte{0x02, 0xaa, 0xbb, 0x01, 0xcc, 0, 0, 0})
	f.Add(byte(2), []byte{0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x01, 0xcc})
	f.Add(byte(3), []byte{0x00, 0x00, 0x01, 0xcc, 0x01, 0xdd, 0})
	f.Fuzz(func(t *testing.T, ct byte, data []byte) {
		t.Helper()
		var c FramedContent
		var auth FramedContentAuthData
		err := unmarshalPrivateMessageContent(data, ContentType(ct), &c, &auth)
		if err != nil {
			if !isDecodeError(err) && err != ErrBadPadding {
				t.Fatalf("untyped error %T: %v", err, err)
			}
			return
		}
		ac := AuthenticatedContent{WireFormat: WireFormatPrivateMessage, Content: c, Auth: auth}
		out, err := marshalPrivateMessageContent(&ac, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(data, out) {
			t.Fatalf("re-encoding %x is not a prefix of %x", out, data)
		}
		for _, x := range data[len(out):] {
			if x != 0 {
				t.Fatalf("accepted non-zero padding in %x", data)
			}
		}
	})
}

// FuzzSenderData fuzzes the SenderData decoder.
func FuzzSenderData(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 5, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, data []byte) {
		var d SenderData
		if err := decodeStrict(data, "mls.SenderData", d.unmarshal); err != nil {
			if !isDecodeError(err) {
				t.Fatalf("untyped error %T: %v", err, err)
			}
			return
		}
		out, err := encodeValue(d.marshal)
		if err != nil || !bytes.Equal(out, data) {
			t.Fatalf("re-encoding %x (%v), want %x", out, err, data)
		}
	})
}

// FuzzUnprotect feeds arbitrary MLSMessage bytes to the receive path of a
// MessageProtector (decode, membership tag or sender-data decryption, secret
// tree, content decryption, padding, signature). It must never panic, must
// classify every rejection, and whatever it accepts must be a message that
// one of the group's members really signed.
func FuzzUnprotect(f *testing.F) {
	cs := MLS128DHKEMX25519AES128GCMSHA256Ed25519
	e := newProtectTestEpoch(f, cs, 4, 16, 1, 3)
	add := func(m *MLSMessage) {
		enc, err := m.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc)
	}
	for i, leaf := range []LeafIndex{1, 3, 1} {
		m, err := e.send.ProtectApplication(e.rand, leaf, e.priv[leaf], []byte{byte(i)}, []byte("seed message"))
		if err != nil {
			f.Fatal(err)
		}
		add(&MLSMessage{Version: ProtocolVersionMLS10, WireFormat: WireFormatPrivateMessage, PrivateMessage: m})
	}
	for _, wf := range []WireFormat{WireFormatPublicMessage, WireFormatPrivateMessage} {
		c := FramedContent{GroupID: e.gc.GroupID, Epoch: e.gc.Epoch, Sender: MemberSender(3),
			ContentType: ContentTypeCommit, Commit: &Commit{Proposals: []ProposalOrRef{{Proposal: &SelfRemoveProposal{}}}}}
		ac, err := e.send.Sign(wf, &c, e.priv[3])
		if err != nil {
			f.Fatal(err)
		}
		ac.Auth.ConfirmationTag = make([]byte, 32)
		if wf == WireFormatPublicMessage {
			m, err := e.send.ProtectPublic(ac)
			if err != nil {
				f.Fatal(err)
			}
			add(&MLSMessage{Version: ProtocolVersionMLS10, WireFormat: wf, PublicMessage: m})
		} else {
			m, err := e.send.ProtectPrivate(e.rand, ac)
			if err != nil {
				f.Fatal(err)
			}
			add(&MLSMessage{Version: ProtocolVersionMLS10, WireFormat: wf, PrivateMessage: m})
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := UnmarshalMLSMessage(data)
		if err != nil {
			return // FuzzMLSMessage covers decoding
		}
		recv := e.newProtector()
		var ac *AuthenticatedContent
		switch m.WireFormat {
		case WireFormatPrivateMessage:
			ac, err = recv.UnprotectPrivate(m.PrivateMessage, e.signerKey)
		case WireFormatPublicMessage:
			ac, err = recv.UnprotectPublic(m.PublicMessage, e.signerKey)
		default:
			return
		}
		if err != nil {
			if RejectReason(err) == ReasonNone {
				t.Fatalf("unclassified rejection: %v", err)
			}
			return
		}
		pub, kerr := e.signerKey(ac.Content.Sender)
		if kerr != nil {
			t.Fatalf("accepted a message from %+v", ac.Content.Sender)
		}
		if err := ac.VerifySignature(cs, pub, recv.groupContext); err != nil {
			t.Fatalf("accepted a message whose signature does not verify: %v", err)
		}
	})
}
