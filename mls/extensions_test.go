package mls

import (
	"bytes"
	"testing"
)

func TestExtensionContents(t *testing.T) {
	t.Parallel()
	rc := &RequiredCapabilities{
		ExtensionTypes:  []ExtensionType{ExtensionTypeAppDataDictionary},
		ProposalTypes:   []ProposalType{ProposalTypeAppDataUpdate, ProposalTypeSelfRemove},
		CredentialTypes: []CredentialType{CredentialTypeBasic},
	}
	rcEnc, err := rc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// extension_types<V> = 02 0006; proposal_types<V> = 04 0008 000a;
	// credential_types<V> = 02 0001.
	if want := []byte{2, 0, 6, 4, 0, 8, 0, 0x0a, 2, 0, 1}; !bytes.Equal(rcEnc, want) {
		t.Fatalf("RequiredCapabilities = %x, want %x", rcEnc, want)
	}
	senders := ExternalSenders{{SignatureKey: []byte{1, 2}, Credential: NewBasicCredential([]byte("server.example"))}}
	sEnc, err := senders.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	dict := &AppDataDictionary{ComponentData: []ComponentData{{ComponentID: 1, Data: []byte("a")}, {ComponentID: 0x80000000, Data: nil}}}
	dEnc, err := dict.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	pub := &ExternalPub{ExternalPub: []byte{9, 9}}
	pEnc, err := pub.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	exts := Extensions{
		{ExtensionType: ExtensionTypeRequiredCapabilities, ExtensionData: rcEnc},
		{ExtensionType: ExtensionTypeExternalSenders, ExtensionData: sEnc},
		{ExtensionType: ExtensionTypeAppDataDictionary, ExtensionData: dEnc},
		{ExtensionType: ExtensionTypeExternalPub, ExtensionData: pEnc},
	}
	gc := GroupContext{Version: ProtocolVersionMLS10, CipherSuite: 1, GroupID: []byte("g"), Extensions: exts}
	enc, err := gc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	dec, err := UnmarshalGroupContext(enc)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := dec.Extensions.Find(ExtensionTypeRatchetTree); ok {
		t.Fatal("found an absent extension")
	}
	x, ok := dec.Extensions.Find(ExtensionTypeRequiredCapabilities)
	if !ok {
		t.Fatal("required_capabilities missing")
	}
	rc2, err := UnmarshalRequiredCapabilities(x.ExtensionData)
	if err != nil || len(rc2.ProposalTypes) != 2 || rc2.ProposalTypes[1] != ProposalTypeSelfRemove {
		t.Fatalf("required_capabilities = %+v, %v", rc2, err)
	}
	x, _ = dec.Extensions.Find(ExtensionTypeExternalSenders)
	s2, err := UnmarshalExternalSenders(x.ExtensionData)
	if err != nil || len(s2) != 1 || string(s2[0].Credential.Identity) != "server.example" {
		t.Fatalf("external_senders = %+v, %v", s2, err)
	}
	x, _ = dec.Extensions.Find(ExtensionTypeAppDataDictionary)
	d2, err := UnmarshalAppDataDictionary(x.ExtensionData)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := d2.Get(1); !ok || string(v) != "a" {
		t.Fatalf("component 1 = %q, %v", v, ok)
	}
	if _, ok := d2.Get(2); ok {
		t.Fatal("found an absent component")
	}
	x, _ = dec.Extensions.Find(ExtensionTypeExternalPub)
	p2, err := UnmarshalExternalPub(x.ExtensionData)
	if err != nil || !bytes.Equal(p2.ExternalPub, []byte{9, 9}) {
		t.Fatalf("external_pub = %+v, %v", p2, err)
	}
}

func TestRatchetTreeNodes(t *testing.T) {
	t.Parallel()
	leaf := &Node{Leaf: &LeafNode{Source: LeafNodeSourceUpdate, Credential: NewBasicCredential(nil)}}
	parent := &Node{Parent: &ParentNode{EncryptionKey: []byte{1}, UnmergedLeaves: []LeafIndex{2}}}
	tree := RatchetTree{leaf, parent, nil, nil, leaf}
	enc, err := tree.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	dec, err := UnmarshalRatchetTree(enc)
	if err != nil {
		t.Fatal(err)
	}
	if len(dec) != 5 || dec[2] != nil || dec[3] != nil || dec[0].Type() != NodeTypeLeaf ||
		dec[1].Type() != NodeTypeParent || dec[1].Parent.UnmergedLeaves[0] != 2 {
		t.Fatalf("decoded tree %+v", dec)
	}
}
