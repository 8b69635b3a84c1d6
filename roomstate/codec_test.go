package roomstate

import (
	"bytes"
	"encoding/hex"
	"errors"
	"slices"
	"testing"

	"golang.org/x/crypto/cryptobyte"

	"github.com/rhizome-chat/rhizome/internal/tlspl"
)

// TestKnownEncodings pins encodings to the drafts' structs with bytes worked
// out by hand from the TLS presentation language, not by this package.
func TestKnownEncodings(t *testing.T) {
	t.Parallel()
	// ParticipantListData{[{user: "mimi://a.b/u/c" (14 bytes), role 2}]}:
	// vector length 0x13 (1 + 14 + 4), opaque length 0x0e, user, uint32 2.
	pl, err := MarshalParticipantList([]Participant{{"mimi://a.b/u/c", 2}})
	if err != nil {
		t.Fatal(err)
	}
	want := "13" + "0e" + hex.EncodeToString([]byte("mimi://a.b/u/c")) + "00000002"
	if got := hex.EncodeToString(pl); got != want {
		t.Errorf("participant list = %s, want %s", got, want)
	}
	// JoinRule{open(1), join_role 2, knock_role 5}.
	jr, err := MarshalJoinRule(JoinRule{Rule: JoinOpen, JoinRole: 2, KnockRole: 5})
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(jr); got != "01"+"00000002"+"00000005" {
		t.Errorf("join rule = %s", got)
	}
	// ParticipantListUpdate{changed [(1, banned)], removed [0], added []}.
	pu, err := MarshalParticipantListUpdate(ParticipantListUpdate{ChangedRoles: []IndexRole{{1, RoleBanned}}, RemovedIndices: []uint32{0}})
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(pu); got != "08"+"00000001"+"00000001"+"04"+"00000000"+"00" {
		t.Errorf("participant list update = %s", got)
	}
	// Role{index 1, "banned", "", caps [], min 0, max absent, min 0,
	// max-active present 0, transitions []} inside RoleData: 4+7+1+1+4+1+4+5+1
	// = 28 = 0x1c bytes.
	rd, err := MarshalRoles([]Role{{Index: 1, Name: "banned", MaxActive: u32(0)}})
	if err != nil {
		t.Fatal(err)
	}
	role := "00000001" + "06" + hex.EncodeToString([]byte("banned")) + "00" + "00" +
		"00000000" + "00" + "00000000" + "01" + "00000000" + "00"
	if got := hex.EncodeToString(rd); got != "1c"+role {
		t.Errorf("roles = %s, want %s", got, "1c"+role)
	}
}

// TestComponentsRoundTrip decodes every component of many states and checks
// decode-then-encode identity.
func TestComponentsRoundTrip(t *testing.T) {
	t.Parallel()
	for i, s := range walkStates(t, 1, 120) {
		cs, err := s.Components()
		if err != nil {
			t.Fatalf("state %d: %v", i, err)
		}
		if !slices.IsSortedFunc(cs, func(a, b ComponentData) int { return int(a.ID) - int(b.ID) }) {
			t.Fatalf("state %d: components not in ascending order", i)
		}
		body, err := MarshalComponents(cs)
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := ParseComponents(body)
		if err != nil {
			t.Fatalf("state %d: ParseComponents: %v", i, err)
		}
		back, err := FromComponents(parsed)
		if err != nil {
			t.Fatalf("state %d: FromComponents: %v", i, err)
		}
		if !back.Equal(s) {
			t.Fatalf("state %d: round trip changed the state", i)
		}
		cs2, _ := back.Components()
		body2, _ := MarshalComponents(cs2)
		if !bytes.Equal(body, body2) {
			t.Fatalf("state %d: re-encoding differs", i)
		}
	}
}

// TestEqualIffEncodingsEqual checks that State.Equal (field by field) and
// byte equality of the canonical components agree on every pair of states
// from random walks, which include equal states reached by different paths.
func TestEqualIffEncodingsEqual(t *testing.T) {
	t.Parallel()
	states := walkStates(t, 7, 60)
	// Structural near-duplicates: fresh pointers and nil-vs-empty slices
	// must not make equal states unequal.
	for _, s := range states[:10] {
		c := s.clone()
		if c.base.MaxUsers != nil {
			c.base.MaxUsers = u32(*c.base.MaxUsers)
		}
		if len(c.preauth) == 0 {
			c.preauth = []PreAuthRule{}
		}
		if len(c.hubCandidates) == 0 {
			c.hubCandidates = nil
		}
		states = append(states, c)
	}
	enc := make([][]byte, len(states))
	for i, s := range states {
		cs, err := s.Components()
		if err != nil {
			t.Fatal(err)
		}
		if enc[i], err = MarshalComponents(cs); err != nil {
			t.Fatal(err)
		}
	}
	equalPairs := 0
	for i := range states {
		for j := range states {
			eq := states[i].Equal(states[j])
			if be := bytes.Equal(enc[i], enc[j]); eq != be {
				t.Fatalf("states %d and %d: Equal=%v but encodings equal=%v", i, j, eq, be)
			}
			if eq && i != j {
				equalPairs++
			}
		}
	}
	if equalPairs == 0 {
		t.Fatal("no equal pairs of distinct states: the test did not exercise equality")
	}
}

// TestStrictDecoding feeds each decoder inputs that are well formed TLS-PL
// but break a rule, and checks the typed error.
func TestStrictDecoding(t *testing.T) {
	t.Parallel()
	build := func(f func(b *cryptobyte.Builder)) []byte {
		out, err := tlspl.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	participants := func(ps ...Participant) []byte {
		b, _ := MarshalParticipantList(ps)
		return b
	}
	roles := newTestRoom(t, PresetPrivateGroup).Roles()
	swapped := slices.Clone(roles)
	swapped[2], swapped[3] = swapped[3], swapped[2]
	unsortedCaps := slices.Clone(roles)
	unsortedCaps[2] = roles[2].clone()
	slices.Reverse(unsortedCaps[2].Capabilities)
	openOnMember := slices.Clone(roles)
	openOnMember[2] = roles[2].clone()
	openOnMember[2].Capabilities = caps(openOnMember[2].Capabilities, []Capability{CanOpenJoin})
	badBanned := slices.Clone(roles)
	badBanned[1].Name = "outcasts"
	encRoles := func(rs []Role) []byte {
		b, _ := MarshalRoles(rs)
		return b
	}
	valid := participants(Participant{testUser(1), 2})
	tests := []struct {
		name  string
		parse func([]byte) error
		in    []byte
		want  error
	}{
		{"participants/trailing", parseFn(ParseParticipantList), append(slices.Clone(valid), 0), tlspl.ErrTrailingData},
		{"participants/truncated", parseFn(ParseParticipantList), valid[:len(valid)-1], tlspl.ErrMalformed},
		{"participants/non-minimal length", parseFn(ParseParticipantList), append([]byte{0x40, valid[0]}, valid[1:]...), tlspl.ErrMalformed},
		{"participants/duplicate", parseFn(ParseParticipantList), participants(Participant{testUser(1), 2}, Participant{testUser(1), 3}), tlspl.ErrMalformed},
		{"participants/role 0", parseFn(ParseParticipantList), participants(Participant{testUser(1), 0}), tlspl.ErrMalformed},
		{"participants/bad uri", parseFn(ParseParticipantList), participants(Participant{"mimi://x/r/room", 2}), tlspl.ErrMalformed},
		{"roles/not ascending", parseFn(ParseRoles), encRoles(swapped), tlspl.ErrMalformed},
		{"roles/capabilities not ascending", parseFn(ParseRoles), encRoles(unsortedCaps), tlspl.ErrMalformed},
		{"roles/canOpenJoin on member", parseFn(ParseRoles), encRoles(openOnMember), tlspl.ErrMalformed},
		{"roles/role 1 not named banned", parseFn(ParseRoles), encRoles(badBanned), tlspl.ErrMalformed},
		{"roles/no role 0", parseFn(ParseRoles), encRoles(roles[1:]), tlspl.ErrMalformed},
		{"roles/bad optional", parseFn(ParseRoles), bytes.Replace(encRoles(roles[:1]), []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 2}, 1), tlspl.ErrMalformed},
		{"metadata/control character", parseFn(ParseRoomMetadata), mustMeta(t, RoomMetadata{RoomURI: "mimi://a/r/b", Name: "a\x1bb"}), tlspl.ErrMalformed},
		{"metadata/not a mimi room", parseFn(ParseRoomMetadata), mustMeta(t, RoomMetadata{RoomURI: "https://a/r/b"}), tlspl.ErrMalformed},
		{"join rule/unknown", parseFn(ParseJoinRule), []byte{3, 0, 0, 0, 2, 0, 0, 0, 5}, tlspl.ErrMalformed},
		{"base policy/bool 2", parseFn(ParseBasePolicy), build(func(b *cryptobyte.Builder) { b.AddUint8(2); b.AddBytes(make([]byte, 10)) }), tlspl.ErrMalformed},
		{"base policy/parent without flag", parseFn(ParseBasePolicy), mustBase(t, BaseRoomPolicy{ParentRoom: "mimi://a/r/p"}), tlspl.ErrMalformed},
		{"preauth/no claims", parseFn(ParsePreAuth), mustPreAuth(t, []PreAuthRule{{Role: 2}}), tlspl.ErrMalformed},
		{"servers/empty", parseFn(ParseServers), mustServers(t, ServerSet{}), tlspl.ErrMalformed},
		{"servers/not ascending", parseFn(ParseServers), mustServers(t, ServerSet{Servers: []Server{testServer(2), testServer(1)}}), tlspl.ErrMalformed},
		{"servers/unknown candidate", parseFn(ParseServers), mustServers(t, ServerSet{Servers: []Server{testServer(1)}, HubCandidates: []ServerID{testServer(2).ID}}), tlspl.ErrMalformed},
		{"update/removed not ascending", parseFn(ParseParticipantListUpdate), mustPLU(t, ParticipantListUpdate{RemovedIndices: []uint32{2, 1}}), tlspl.ErrMalformed},
		{"update/changed and removed", parseFn(ParseParticipantListUpdate), mustPLU(t, ParticipantListUpdate{ChangedRoles: []IndexRole{{1, 2}}, RemovedIndices: []uint32{1}}), tlspl.ErrMalformed},
		{"update/empty", parseFn(ParseParticipantListUpdate), mustPLU(t, ParticipantListUpdate{}), tlspl.ErrMalformed},
		{"servers update/twice", parseFn(ParseServersUpdate), mustSU(t, ServersUpdate{Removed: []ServerID{testServer(1).ID, testServer(1).ID}}), tlspl.ErrMalformed},
		{"dictionary/not ascending", parseFn(ParseComponents), mustDict(t, []ComponentData{{ID: 0x23}, {ID: 0x22}}), tlspl.ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.parse(tc.in)
			var de *tlspl.DecodeError
			if !errors.As(err, &de) || !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want a *tlspl.DecodeError wrapping %v", err, tc.want)
			}
		})
	}
}

func parseFn[T any](f func([]byte) (T, error)) func([]byte) error {
	return func(b []byte) error { _, err := f(b); return err }
}

func must(t *testing.T, b []byte, err error) []byte {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustPL(t *testing.T, ps []Participant) []byte {
	b, err := MarshalParticipantList(ps)
	return must(t, b, err)
}

func mustJR(t *testing.T, j JoinRule) []byte { b, err := MarshalJoinRule(j); return must(t, b, err) }

func mustMeta(t *testing.T, m RoomMetadata) []byte {
	b, err := MarshalRoomMetadata(m)
	return must(t, b, err)
}
func mustBase(t *testing.T, p BaseRoomPolicy) []byte {
	b, err := MarshalBasePolicy(p)
	return must(t, b, err)
}
func mustPreAuth(t *testing.T, r []PreAuthRule) []byte {
	b, err := MarshalPreAuth(r)
	return must(t, b, err)
}
func mustServers(t *testing.T, s ServerSet) []byte {
	b, err := MarshalServers(s)
	return must(t, b, err)
}
func mustPLU(t *testing.T, u ParticipantListUpdate) []byte {
	b, err := MarshalParticipantListUpdate(u)
	return must(t, b, err)
}
func mustSU(t *testing.T, u ServersUpdate) []byte {
	b, err := MarshalServersUpdate(u)
	return must(t, b, err)
}
func mustDict(t *testing.T, cs []ComponentData) []byte {
	b, err := MarshalComponents(cs)
	return must(t, b, err)
}

// TestFromComponentsCrossChecks rejects dictionaries whose components are
// each valid but inconsistent together, and missing components.
func TestFromComponentsCrossChecks(t *testing.T) {
	t.Parallel()
	s := newTestRoom(t, PresetPrivateGroup)
	cs, err := s.Components()
	if err != nil {
		t.Fatal(err)
	}
	replace := func(id ComponentID, data []byte) []ComponentData {
		out := slices.Clone(cs)
		for i := range out {
			if out[i].ID == id {
				out[i].Data = data
			}
		}
		return out
	}
	tests := []struct {
		name    string
		entries []ComponentData
	}{
		{"missing component", cs[1:]},
		{"participant with undefined role", replace(ComponentParticipantList, mustPL(t, []Participant{{testUser(0), 9}}))},
		{"join role undefined", replace(ComponentJoinRule, mustJR(t, JoinRule{Rule: JoinOpen, JoinRole: 9}))},
		{"knock role allows clients", replace(ComponentJoinRule, mustJR(t, JoinRule{Rule: JoinKnock, JoinRole: 2, KnockRole: 2}))},
		{"preauth undefined role", replace(ComponentPreAuthList, mustPreAuth(t, []PreAuthRule{{Claims: []Claim{{1, ClaimDomain, "x"}}, Role: 9}}))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := FromComponents(tc.entries); !errors.Is(err, tlspl.ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
		})
	}
	// Foreign components are skipped.
	withForeign := append([]ComponentData{{ID: 0x0001, Data: []byte{1, 2}}}, cs...)
	back, err := FromComponents(withForeign)
	if err != nil || !back.Equal(s) {
		t.Fatalf("foreign component: %v", err)
	}
}
