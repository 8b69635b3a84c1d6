package roomstate

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The scenario files in testdata/*.txt are line-based scripts a reviewer can
// read without Go. Syntax (one command per line, '#' starts a comment):
//
//	server NAME domain=D                    declare a server
//	preset P creator=U [peer=U] [servers=a,b] [hub=a,b] [devices=N] [name="..."]
//	ACTOR: COMMAND ARGS... [-> error Reason | -> ok]
//	checkpoint NAME | restore NAME
//	expect ...                              assertions (see expect below)
//
// ACTOR is a user ("alice" = mimi://example.com/u/alice, "bob@b.example" =
// mimi://b.example/u/bob), a client ("alice/d2"), or a server ("@s1").
// Commands that change clients build an MLS commit description and go
// through AuthorizeCommit; the others go through Apply (and, to check the
// wire form, also through EncodeOp + ApplyUpdate, which must agree).
// A line without "->" must succeed; "-> error R" must fail with reason R
// and leave the state unchanged.

func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 10 {
		t.Fatalf("found %d scenario files, want at least 10", len(files))
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			h := &harness{t: t, file: f, servers: map[string]Server{}, checkpoints: map[string]snapshot{}}
			for i, line := range strings.Split(string(data), "\n") {
				h.line = i + 1
				h.run(line)
			}
			if h.state == nil {
				t.Fatal("scenario never created a room")
			}
			t.Logf("%d state changes also checked as commits", h.viaCommit)
		})
	}
}

type snapshot struct {
	state  *State
	roster []Client
}

type harness struct {
	t           *testing.T
	file        string
	line        int
	state       *State
	roster      []Client
	servers     map[string]Server
	checkpoints map[string]snapshot
	viaCommit   int // state changes also run as commits
}

func (h *harness) fatalf(format string, args ...any) {
	h.t.Helper()
	h.t.Fatalf("%s:%d: %s", h.file, h.line, fmt.Sprintf(format, args...))
}

func (h *harness) errorf(format string, args ...any) {
	h.t.Helper()
	h.t.Errorf("%s:%d: %s", h.file, h.line, fmt.Sprintf(format, args...))
}

// tokenize splits a line into words; "double quoted" words may hold spaces.
func tokenize(s string) []string {
	var out []string
	var cur strings.Builder
	inQuote, have := false, false
	for _, r := range s {
		switch {
		case r == '"':
			inQuote = !inQuote
			have = true
		case (r == ' ' || r == '\t') && !inQuote:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}

func userURI(name string) URI {
	if strings.Contains(name, "://") {
		return URI(name)
	}
	domain := "example.com"
	if n, d, ok := strings.Cut(name, "@"); ok {
		name, domain = n, d
	}
	return URI("mimi://" + domain + "/u/" + name)
}

// clientOf returns the Client for "user/device".
func clientOf(ref string) Client {
	user, dev, _ := strings.Cut(ref, "/")
	u := userURI(user)
	return Client{ID: ClientID(fmt.Sprintf("mimi://%s/d/%s/%s", u.Domain(), strings.SplitN(user, "@", 2)[0], dev)), User: u}
}

func serverID(name string) ServerID {
	var id ServerID
	copy(id[:], name)
	return id
}

// kv splits key=value arguments from positional ones.
func kv(args []string) (map[string]string, []string) {
	m := map[string]string{}
	var pos []string
	for _, a := range args {
		if k, v, ok := strings.Cut(a, "="); ok {
			m[k] = v
		} else {
			pos = append(pos, a)
		}
	}
	return m, pos
}

func (h *harness) role(name string) RoleIndex {
	h.t.Helper()
	if name == "none" || name == "absent" {
		return RoleNone
	}
	if h.state != nil {
		if r, ok := h.state.RoleByName(name); ok {
			return r
		}
	}
	h.fatalf("unknown role %q", name)
	return 0
}

func (h *harness) clientsOf(user URI) []Client {
	var out []Client
	for _, c := range h.roster {
		if c.User == user {
			out = append(out, c)
		}
	}
	return out
}

// actorClient returns the acting client for an actor word: the named client
// ("alice/d2") or the user's first client in the roster.
func (h *harness) actorClient(actor string) (Client, bool) {
	if strings.Contains(actor, "/") {
		c := clientOf(actor)
		return c, slices.Contains(h.roster, c)
	}
	cs := h.clientsOf(userURI(actor))
	if len(cs) == 0 {
		return Client{}, false
	}
	return cs[0], true
}

// otherCommitter returns the first roster client whose user is not user.
func (h *harness) otherCommitter(user URI) Client {
	h.t.Helper()
	for _, c := range h.roster {
		if c.User != user {
			return c
		}
	}
	h.fatalf("no client of another user to commit")
	return Client{}
}

func (h *harness) run(raw string) {
	h.t.Helper()
	line, _, _ := strings.Cut(raw, "#")
	line = strings.TrimSpace(line)
	if line == "" {
		return
	}
	var want string
	if cmd, exp, ok := strings.Cut(line, "->"); ok {
		line, want = strings.TrimSpace(cmd), strings.TrimSpace(exp)
	}
	words := tokenize(line)
	switch words[0] {
	case "server":
		m, pos := kv(words[1:])
		h.servers[pos[0]] = Server{ID: serverID(pos[0]), Domain: m["domain"]}
		return
	case "preset":
		h.preset(words[1:], want)
		return
	case "checkpoint":
		h.checkpoints[words[1]] = snapshot{h.state, slices.Clone(h.roster)}
		return
	case "restore":
		cp, ok := h.checkpoints[words[1]]
		if !ok {
			h.fatalf("no checkpoint %q", words[1])
		}
		h.state, h.roster = cp.state, slices.Clone(cp.roster)
		return
	case "expect":
		h.expect(words[1:])
		return
	}
	actor, ok := strings.CutSuffix(words[0], ":")
	if !ok || len(words) < 2 {
		h.fatalf("cannot parse %q", raw)
	}
	before, beforeRoster := h.state, slices.Clone(h.roster)
	beforeEnc := h.encode(before)
	err := h.do(actor, words[1], words[2:])
	// Inputs are never modified, whatever the outcome.
	if !bytes.Equal(h.encode(before), beforeEnc) {
		h.fatalf("the input state was modified")
	}
	switch {
	case want == "" || want == "ok":
		if err != nil {
			h.fatalf("%s: unexpected error: %v", line, err)
		}
	case strings.HasPrefix(want, "error "):
		wr, ok := ParseReason(strings.TrimPrefix(want, "error "))
		if !ok {
			h.fatalf("unknown reason in %q", want)
		}
		if err == nil {
			h.fatalf("%s: succeeded, want %s", line, wr)
		}
		if got := ReasonOf(err); got != wr {
			h.fatalf("%s: reason %s, want %s (%v)", line, got, wr, err)
		}
		if h.state != before || !slices.Equal(h.roster, beforeRoster) {
			h.fatalf("%s: rejected change altered the state", line)
		}
	default:
		h.fatalf("cannot parse expectation %q", want)
	}
}

func (h *harness) encode(s *State) []byte {
	h.t.Helper()
	if s == nil {
		return nil
	}
	cs, err := s.Components()
	if err != nil {
		h.fatalf("encode: %v", err)
	}
	b, err := MarshalComponents(cs)
	if err != nil {
		h.fatalf("encode: %v", err)
	}
	return b
}

func (h *harness) preset(args []string, want string) {
	m, pos := kv(args)
	p, ok := ParsePreset(pos[0])
	if !ok {
		h.fatalf("unknown preset %q", pos[0])
	}
	cfg := RoomConfig{Room: URI("mimi://example.com/r/" + pos[0]), Name: m["name"], Creator: userURI(m["creator"])}
	if v, ok := m["room"]; ok {
		cfg.Room = URI(v)
	}
	if v, ok := m["peer"]; ok {
		cfg.Peer = userURI(v)
	}
	names := "s1"
	if v, ok := m["servers"]; ok {
		names = v
	}
	for _, n := range strings.Split(names, ",") {
		sv, ok := h.servers[n]
		if !ok {
			sv = Server{ID: serverID(n), Domain: "example.com"}
		}
		cfg.Servers = append(cfg.Servers, sv)
	}
	if v, ok := m["hub"]; ok {
		for _, n := range strings.Split(v, ",") {
			cfg.HubCandidates = append(cfg.HubCandidates, serverID(n))
		}
	}
	s, err := NewRoom(p, cfg)
	if want != "" && want != "ok" {
		wr, _ := ParseReason(strings.TrimPrefix(want, "error "))
		if ReasonOf(err) != wr {
			h.fatalf("preset: got %v, want %s", err, want)
		}
		return
	}
	if err != nil {
		h.fatalf("preset: %v", err)
	}
	h.state = s
	h.roster = nil
	n := 1
	if v, ok := m["devices"]; ok {
		n, _ = strconv.Atoi(v)
	}
	for _, p := range s.Participants() {
		for i := 1; i <= n; i++ {
			h.roster = append(h.roster, clientOf(fmt.Sprintf("%s/d%d", shortName(p.User), i)))
		}
	}
	if err := CheckRoster(h.state, h.roster); err != nil {
		h.fatalf("initial members: %v", err)
	}
}

// shortName turns mimi://example.com/u/alice back into "alice" and other
// domains into "alice@domain".
func shortName(u URI) string {
	i := strings.LastIndex(string(u), "/")
	name := string(u)[i+1:]
	if d := u.Domain(); d != "example.com" {
		return name + "@" + d
	}
	return name
}

// devices parses devices=N or devices=a,b,c into client refs of user.
func devices(user, spec string) []string {
	if spec == "" {
		return nil
	}
	if n, err := strconv.Atoi(spec); err == nil {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("%s/d%d", user, i+1)
		}
		return out
	}
	var out []string
	for _, d := range strings.Split(spec, ",") {
		out = append(out, user+"/"+d)
	}
	return out
}
