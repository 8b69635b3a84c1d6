package roomstate

import (
	"fmt"
	"testing"
)

// rng is a small deterministic generator (splitmix64) so tests need no
// math/rand and replay exactly.
type rng uint64

func (r *rng) next() uint64 {
	*r += 0x9e3779b97f4a7c15
	z := uint64(*r)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func (r *rng) intn(n int) int { return int(r.next() % uint64(n)) }

func testUser(i int) URI { return URI(fmt.Sprintf("mimi://d%d.example/u/user%d", i%3, i)) }

func testServer(i int) Server {
	var id ServerID
	id[0], id[31] = byte(i), 0xAA
	return Server{ID: id, Domain: fmt.Sprintf("d%d.example", i%3)}
}

// newTestRoom creates a room from preset p with creator user 0.
func newTestRoom(t testing.TB, p Preset) *State {
	t.Helper()
	s, err := NewRoom(p, RoomConfig{
		Room:    "mimi://d0.example/r/test",
		Name:    "test",
		Creator: testUser(0),
		Peer:    testUser(1),
		Servers: []Server{testServer(2), testServer(1)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// randomOp returns a random op against s; many are not authorized, which
// is fine: walks keep the accepted ones.
func randomOp(r *rng, s *State) (Actor, Op) {
	ps := s.Participants()
	actor := UserActor(testUser(r.intn(6)), "")
	if len(ps) > 0 && r.intn(4) != 0 {
		actor = UserActor(ps[r.intn(len(ps))].User, "")
	}
	roles := []RoleIndex{RoleBanned, RoleMember, RoleModerator, RoleAdmin, RoleKnocking}
	role := roles[r.intn(len(roles))]
	target := testUser(r.intn(8))
	switch r.intn(9) {
	case 0:
		return actor, &ParticipantUpdate{Added: []UserRole{{target, role}}}
	case 1:
		return actor, &ParticipantUpdate{RoleChanges: []UserRole{{target, role}}}
	case 2:
		return actor, &ParticipantUpdate{Removed: []URI{target}}
	case 3:
		m := s.Metadata()
		m.Name = fmt.Sprintf("room %d", r.intn(3))
		if r.intn(2) == 0 {
			m.Subject = fmt.Sprintf("topic %d", r.intn(3))
		}
		if r.intn(3) == 0 {
			m.Descriptions = append(m.Descriptions, RichDescription{LanguageTag: "en", Content: []byte{byte(r.intn(3))}})
		}
		return actor, &MetadataUpdate{Metadata: m}
	case 4:
		j := s.JoinRule()
		j.Rule = JoinRuleKind(r.intn(3))
		return actor, &JoinRuleUpdate{JoinRule: j}
	case 5:
		sv := testServer(r.intn(5))
		if r.intn(2) == 0 {
			return actor, &ServersUpdate{Added: []Server{sv}}
		}
		return actor, &ServersUpdate{Removed: []ServerID{sv.ID}}
	case 6:
		svs := s.Servers()
		var hc []ServerID
		for _, i := range []int{r.intn(len(svs)), r.intn(len(svs))} {
			if len(hc) == 0 || hc[0] != svs[i].ID {
				hc = append(hc, svs[i].ID)
			}
		}
		return actor, &ServersUpdate{HubCandidates: &hc}
	case 7:
		rules := s.PreAuth()
		rules = append(rules, PreAuthRule{Claims: []Claim{{CredentialType: CredentialTypeBasic, ID: ClaimDomain, Value: fmt.Sprintf("d%d.example", r.intn(3))}}, Role: RoleMember})
		if r.intn(3) == 0 {
			rules = nil
		}
		return actor, &PreAuthUpdate{Rules: rules}
	default:
		roles := s.Roles()
		i := 2 + r.intn(len(roles)-2)
		if r.intn(2) == 0 {
			roles[i].MaxParticipants = u32(uint32(r.intn(4) + 1))
		} else {
			roles[i].MaxParticipants = nil
		}
		return actor, &RolesUpdate{Roles: roles}
	}
}

// walkStates returns every state reached by n random changes from each
// preset, starting states included.
func walkStates(t testing.TB, seed uint64, n int) []*State {
	t.Helper()
	r := rng(seed)
	var out []*State
	for _, p := range []Preset{PresetDirectMessage, PresetPrivateGroup, PresetPublicRoom, PresetAnnouncementChannel} {
		s := newTestRoom(t, p)
		out = append(out, s)
		for range n {
			a, op := randomOp(&r, s)
			next, err := Apply(s, Change{Actor: a, Op: op})
			if err != nil {
				if ReasonOf(err) == 0 {
					t.Fatalf("untyped rejection: %v", err)
				}
				continue
			}
			s = next
			out = append(out, s)
		}
	}
	return out
}
