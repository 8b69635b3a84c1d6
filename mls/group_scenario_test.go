package mls

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Multi-client scenarios: mls/testdata/scenarios/*.txt scripts, one
// command per line, run for every supported suite. After every step every
// member must be in the same epoch with the same epoch_authenticator and
// exporter output, and every member's view of the tree must have the same
// hash.
//
//	create A                 A creates the group
//	add A B C ...            A commits Adds of fresh KeyPackages of B, C, ... (they join by Welcome)
//	update A                 A commits with a path and no proposals
//	propose-update A         A proposes an Update (committed by the next commit)
//	propose-remove A B       A proposes to remove B
//	propose-add A B          A proposes to add B
//	self-remove A            A proposes SelfRemove
//	remove A B ...           A commits Removes of B, ...
//	commit A                 A commits the pending proposals (no forced path)
//	external-join A          A joins by external commit from a member's GroupInfo
//	resync A                 A rejoins by external commit removing its old leaf
//	send A text              A sends an application message; everyone else reads it
//	appdata A ID text        A commits an AppDataUpdate of component ID
//	psk A                    A commits a resumption PSK of the previous epoch
//	reinit A                 A commits a ReInit; A recreates the group and welcomes the others
//	branch A                 A branches the group; every member joins the branch
//	external-propose-remove B   the server (external sender 0) proposes removing B
//	request-join A           A asks to join with a new_member_proposal Add (joins at the next commit)
//	require-appdata A        A commits a GroupContextExtensions proposal requiring AppDataUpdate
type scenario struct {
	t       *testing.T
	cs      CipherSuite
	rand    *seedReader
	now     time.Time
	server  SignaturePrivateKey
	members map[string]*Group
	sigs    map[string]SignaturePrivateKey
	waiting map[string]*KeyPackageBundle
	step    int
}

func newScenario(t *testing.T, cs CipherSuite, name string) *scenario {
	s := &scenario{t: t, cs: cs, rand: &seedReader{seed: fmt.Appendf(nil, "%s/%v", name, cs)},
		now: time.Unix(1_800_000_000, 0), members: map[string]*Group{}, sigs: map[string]SignaturePrivateKey{},
		waiting: map[string]*KeyPackageBundle{}}
	var err error
	if s.server, _, err = cs.GenerateSignatureKeyPair(s.rand); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *scenario) fatalf(format string, args ...any) {
	s.t.Helper()
	s.t.Fatalf("step %d: "+format, append([]any{s.step}, args...)...)
}

func (s *scenario) sig(name string) SignaturePrivateKey {
	if k, ok := s.sigs[name]; ok {
		return k
	}
	k, _, err := s.cs.GenerateSignatureKeyPair(s.rand)
	if err != nil {
		s.fatalf("%v", err)
	}
	s.sigs[name] = k
	return k
}

func (s *scenario) cfg() GroupConfig {
	return GroupConfig{RatchetTreeInWelcome: true, PaddingBlock: 32}
}

func (s *scenario) keyPackage(name string) *KeyPackageBundle {
	kb, err := NewKeyPackage(s.rand, s.cs, s.sig(name), NewBasicCredential([]byte(name)), &KeyPackageOptions{NotBefore: s.now.Add(-time.Hour)})
	if err != nil {
		s.fatalf("key package: %v", err)
	}
	return kb
}

func (s *scenario) group(name string) *Group {
	g, ok := s.members[name]
	if !ok {
		s.fatalf("%s is not a member", name)
	}
	return g
}

// wire round-trips a message through its encoding, as the network would.
func (s *scenario) wire(m *MLSMessage) *MLSMessage {
	raw, err := m.Marshal()
	if err != nil {
		s.fatalf("marshal: %v", err)
	}
	d, err := UnmarshalMLSMessage(raw)
	if err != nil {
		s.fatalf("unmarshal: %v", err)
	}
	return d
}

// deliver processes m at every member (the sender included, which merges
// its pending commit) and returns the outcomes.
func (s *scenario) deliver(m *MLSMessage, id string) {
	s.t.Helper()
	for _, name := range mapsKeys(s.members) {
		g := s.members[name]
		out, err := g.ProcessMessage(s.wire(m), &ProcessOptions{EpochID: []byte(id), Now: s.now})
		if err != nil {
			s.fatalf("%s processing: %v", name, err)
		}
		if out.Commit != nil && out.Commit.RemovedSelf {
			delete(s.members, name)
		}
	}
}

func mapsKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func (s *scenario) commit(by string, opts *CommitOptions) *PendingCommit {
	g := s.group(by)
	if opts == nil {
		opts = &CommitOptions{}
	}
	opts.Now = s.now
	pc, err := g.Commit(s.rand, opts)
	if err != nil {
		s.fatalf("%s commit: %v", by, err)
	}
	s.deliver(pc.Message, fmt.Sprintf("commit-%d", s.step))
	if pc.Welcome != nil {
		for _, n := range mapsKeys(s.waiting) {
			s.join(n, pc.Welcome, s.waiting[n], s.cfg())
			delete(s.waiting, n)
		}
	}
	return pc
}

func (s *scenario) join(name string, w *Welcome, kb *KeyPackageBundle, cfg GroupConfig) {
	raw, err := w.Marshal()
	if err != nil {
		s.fatalf("%v", err)
	}
	w2, err := UnmarshalWelcome(raw)
	if err != nil {
		s.fatalf("%v", err)
	}
	g, err := JoinGroup(w2, kb, &JoinOptions{Config: cfg, Now: s.now})
	if err != nil {
		s.fatalf("%s join: %v", name, err)
	}
	s.members[name] = g
}

func (s *scenario) leafOf(name string) LeafIndex {
	return s.group(name).LeafIndex()
}

func (s *scenario) run(line string) {
	f := strings.Fields(line)
	cmd, args := f[0], f[1:]
	need := func(n int) {
		if len(args) < n {
			s.fatalf("%q needs %d arguments", cmd, n)
		}
	}
	switch cmd {
	case "create":
		need(1)
		exts := Extensions{}
		data, err := ExternalSenders{{SignatureKey: s.server.PublicKey(), Credential: NewBasicCredential([]byte("server"))}}.Marshal()
		if err != nil {
			s.fatalf("%v", err)
		}
		exts = append(exts, Extension{ExtensionType: ExtensionTypeExternalSenders, ExtensionData: data})
		g, err := CreateGroup(s.rand, s.cs, []byte("scenario group"), s.sig(args[0]), NewBasicCredential([]byte(args[0])),
			&CreateOptions{Config: s.cfg(), Extensions: exts, NotBefore: s.now.Add(-time.Hour)})
		if err != nil {
			s.fatalf("create: %v", err)
		}
		s.members[args[0]] = g
	case "add":
		need(2)
		var props []Proposal
		kbs := map[string]*KeyPackageBundle{}
		for _, n := range args[1:] {
			kbs[n] = s.keyPackage(n)
			props = append(props, &AddProposal{KeyPackage: *kbs[n].KeyPackage})
		}
		pc := s.commit(args[0], &CommitOptions{Proposals: props})
		for _, n := range args[1:] {
			s.join(n, pc.Welcome, kbs[n], s.cfg())
		}
	case "update":
		need(1)
		s.commit(args[0], &CommitOptions{ForcePath: true})
	case "commit":
		need(1)
		s.commit(args[0], nil)
	case "propose-update":
		need(1)
		m, err := s.group(args[0]).ProposeUpdate(s.rand)
		if err != nil {
			s.fatalf("%v", err)
		}
		s.deliver(m, "")
	case "propose-remove":
		need(2)
		m, err := s.group(args[0]).Propose(s.rand, &RemoveProposal{Removed: s.leafOf(args[1])})
		if err != nil {
			s.fatalf("%v", err)
		}
		s.deliver(m, "")
	case "self-remove":
		need(1)
		m, err := s.group(args[0]).Propose(s.rand, &SelfRemoveProposal{})
		if err != nil {
			s.fatalf("%v", err)
		}
		s.deliver(m, "")
	case "external-propose-remove":
		need(1)
		g := s.group(args[0])
		m, err := ExternalProposal(s.cs, g.GroupID(), g.Epoch(), 0, s.server, &RemoveProposal{Removed: g.LeafIndex()})
		if err != nil {
			s.fatalf("%v", err)
		}
		s.deliver(m, "")
	case "request-join":
		need(1)
		var any *Group
		for _, n := range mapsKeys(s.members) {
			any = s.members[n]
			break
		}
		kb := s.keyPackage(args[0])
		m, err := NewMemberProposal(any.GroupID(), any.Epoch(), kb)
		if err != nil {
			s.fatalf("%v", err)
		}
		s.deliver(m, "")
		s.waiting[args[0]] = kb
	case "require-appdata":
		need(1)
		g := s.group(args[0])
		rc, err := (&RequiredCapabilities{ExtensionTypes: []ExtensionType{ExtensionTypeAppDataDictionary},
			ProposalTypes: []ProposalType{ProposalTypeAppDataUpdate}, CredentialTypes: []CredentialType{}}).Marshal()
		if err != nil {
			s.fatalf("%v", err)
		}
		exts := Extensions{{ExtensionType: ExtensionTypeRequiredCapabilities, ExtensionData: rc}}
		for _, e := range g.Extensions() {
			if e.ExtensionType != ExtensionTypeRequiredCapabilities {
				exts = append(exts, e)
			}
		}
		s.commit(args[0], &CommitOptions{Proposals: []Proposal{&GroupContextExtensionsProposal{Extensions: exts}}})
	case "remove":
		need(2)
		var props []Proposal
		for _, n := range args[1:] {
			props = append(props, &RemoveProposal{Removed: s.leafOf(n)})
		}
		s.commit(args[0], &CommitOptions{Proposals: props})
	case "external-join", "resync":
		need(1)
		var any *Group
		for _, n := range mapsKeys(s.members) {
			if n != args[0] {
				any = s.members[n]
				break
			}
		}
		gi, err := any.GroupInfo(true)
		if err != nil {
			s.fatalf("%v", err)
		}
		var ng *Group
		var m *MLSMessage
		if cmd == "resync" {
			ng, m, err = s.group(args[0]).Resync(s.rand, gi, &ExternalJoinOptions{Config: s.cfg(), Now: s.now})
			delete(s.members, args[0])
		} else {
			ng, m, err = JoinExternal(s.rand, gi, s.sig(args[0]), NewBasicCredential([]byte(args[0])), &ExternalJoinOptions{Config: s.cfg(), Now: s.now})
		}
		if err != nil {
			s.fatalf("%s %s: %v", cmd, args[0], err)
		}
		s.deliver(m, fmt.Sprintf("external-%d", s.step))
		s.members[args[0]] = ng
	case "send":
		need(2)
		text := strings.Join(args[1:], " ")
		m, err := s.group(args[0]).Send(s.rand, []byte("aad"), []byte(text))
		if err != nil {
			s.fatalf("%v", err)
		}
		for n, g := range s.members {
			if n == args[0] {
				continue
			}
			out, err := g.ProcessMessage(s.wire(m), nil)
			if err != nil {
				s.fatalf("%s reading %s's message: %v", n, args[0], err)
			}
			if string(out.ApplicationData) != text || out.Sender != MemberSender(s.leafOf(args[0])) {
				s.fatalf("%s read %q from %v", n, out.ApplicationData, out.Sender)
			}
		}
	case "appdata":
		need(3)
		id, err := strconv.ParseUint(args[1], 10, 32)
		if err != nil {
			s.fatalf("%v", err)
		}
		val := strings.Join(args[2:], " ")
		s.commit(args[0], &CommitOptions{Proposals: []Proposal{&AppDataUpdateProposal{ComponentID: ComponentID(id), Op: AppDataUpdateOperationUpdate, Update: []byte(val)}}})
		for n, g := range s.members {
			d, err := g.AppData()
			if err != nil {
				s.fatalf("%v", err)
			}
			if v, ok := d.Get(ComponentID(id)); !ok || string(v) != val {
				s.fatalf("%s: component %d is %q", n, id, v)
			}
		}
	case "psk":
		need(1)
		g := s.group(args[0])
		id, err := NewPSKID(s.rand, s.cs, PreSharedKeyID{PSKType: PSKTypeResumption, Usage: ResumptionPSKUsageApplication,
			PSKGroupID: g.GroupID(), PSKEpoch: g.Epoch() - 1})
		if err != nil {
			s.fatalf("%v", err)
		}
		s.commit(args[0], &CommitOptions{Proposals: []Proposal{&PreSharedKeyProposal{PSK: id}}})
	case "reinit", "branch":
		need(1)
		s.resume(cmd, args[0])
	default:
		s.fatalf("unknown command %q", cmd)
	}
}

// resume runs a reinit or branch led by leader: everyone joins the new
// group with a fresh KeyPackage.
func (s *scenario) resume(kind, leader string) {
	old := map[string]*Group{}
	for n, g := range s.members {
		old[n] = g
	}
	newID := []byte(fmt.Sprintf("%s of step %d", kind, s.step))
	if kind == "reinit" {
		s.commit(leader, &CommitOptions{NoPending: true, Proposals: []Proposal{&ReInitProposal{GroupID: newID,
			Version: ProtocolVersionMLS10, CipherSuite: s.cs, Extensions: s.group(leader).Extensions()}}})
		for n, g := range s.members {
			if g.Active() {
				s.fatalf("%s still active after reinit", n)
			}
			if _, err := g.Send(s.rand, nil, []byte("x")); err == nil {
				s.fatalf("%s sent in a reinitialized group", n)
			}
		}
	}
	kbs := map[string]*KeyPackageBundle{}
	var kps []*KeyPackage
	for _, n := range mapsKeys(s.members) {
		if n != leader {
			kbs[n] = s.keyPackage(n)
			kps = append(kps, kbs[n].KeyPackage)
		}
	}
	var ng *Group
	var w *Welcome
	var err error
	opts := &ResumeOptions{Config: s.cfg(), Now: s.now, Extensions: s.group(leader).Extensions()}
	if kind == "reinit" {
		ng, w, err = s.group(leader).ReInit(s.rand, kps, opts)
	} else {
		ng, w, err = s.group(leader).Branch(s.rand, newID, kps, opts)
	}
	if err != nil {
		s.fatalf("%s: %v", kind, err)
	}
	s.members = map[string]*Group{leader: ng}
	for n, kb := range kbs {
		cfg := s.cfg()
		cfg.PSKs = old[n].ResumptionPSKLookup()
		s.join(n, w, kb, cfg)
	}
}

// check asserts that all members agree.
func (s *scenario) check() {
	s.t.Helper()
	var ref *Group
	var refName string
	for _, n := range mapsKeys(s.members) {
		g := s.members[n]
		if ref == nil {
			ref, refName = g, n
			continue
		}
		if g.Epoch() != ref.Epoch() || !bytes.Equal(g.EpochAuthenticator(), ref.EpochAuthenticator()) {
			s.fatalf("%s (epoch %d) and %s (epoch %d) disagree on the epoch authenticator", n, g.Epoch(), refName, ref.Epoch())
		}
		e1, _ := g.Export("scenario", nil, 16)
		e2, _ := ref.Export("scenario", nil, 16)
		if !bytes.Equal(e1, e2) {
			s.fatalf("%s and %s disagree on the exporter", n, refName)
		}
		h1, _ := g.Tree().TreeHash()
		h2, _ := ref.Tree().TreeHash()
		if !bytes.Equal(h1, h2) {
			s.fatalf("%s and %s disagree on the tree", n, refName)
		}
	}
	if ref != nil && ref.Tree().MemberCount() != len(s.members) {
		s.fatalf("tree has %d members, scenario %d", ref.Tree().MemberCount(), len(s.members))
	}
}

func TestScenarios(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "scenarios", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, cs := range SupportedCipherSuites() {
			t.Run(fmt.Sprintf("%s/%v", filepath.Base(path), cs), func(t *testing.T) {
				t.Parallel()
				s := newScenario(t, cs, filepath.Base(path))
				sc := bufio.NewScanner(bytes.NewReader(data))
				for sc.Scan() {
					line := strings.TrimSpace(sc.Text())
					if i := strings.IndexByte(line, '#'); i >= 0 {
						line = strings.TrimSpace(line[:i])
					}
					if line == "" {
						continue
					}
					s.step++
					s.run(line)
					s.check()
				}
				if s.step == 0 {
					t.Fatal("empty scenario")
				}
			})
		}
	}
}
