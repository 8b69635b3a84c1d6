package client

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/rhizome-chat/rhizome/clientapi"
	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/internal/roomevent"
	"github.com/rhizome-chat/rhizome/mls"
	roomcheck "github.com/rhizome-chat/rhizome/room"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// maxSnapshots bounds the epochs of a room kept as snapshots for moving to
// another branch (the rewind horizon of the client).
const maxSnapshots = 32

// roomInfo is persisted under r/<room>/info.
type roomInfo struct {
	Room     string `json:"room"`
	CreateID string `json:"create_id"`
	Ordered  bool   `json:"ordered"` // the node sends order lines for the room
}

// actorJSON names who asked for a change: the sender's user and device and
// the origin server (hex).
type actorJSON struct {
	User   string `json:"user"`
	Client string `json:"client"`
	Origin string `json:"origin"`
}

func (a actorJSON) actor() roomstate.Actor {
	act := roomstate.Actor{Kind: roomstate.ActorUser, User: roomstate.URI(a.User), Client: roomstate.ClientID(a.Client)}
	if b, err := hex.DecodeString(a.Origin); err == nil && len(b) == len(act.Server) {
		copy(act.Server[:], b)
	}
	return act
}

// logEntry is one step of a room's replay log. Replaying the log in order
// from an empty state rebuilds the room's MLS group, room state and epoch
// history exactly (own commits and the group creation use seeded
// randomness recorded in the entry).
type logEntry struct {
	Op      string             `json:"op"` // create, join, commit, state-event, state (old logs), proposal, sent, undo, leave, follow
	Event   string             `json:"event,omitempty"`
	Parent  string             `json:"parent,omitempty"`
	Seed    []byte             `json:"seed,omitempty"`
	MLS     []byte             `json:"mls,omitempty"`
	Changes []clientapi.Change `json:"changes,omitempty"`
	Actor   actorJSON          `json:"actor"`
	Welcome []byte             `json:"welcome,omitempty"`
	KP      *kpRecord          `json:"kp,omitempty"`
	State   []byte             `json:"state,omitempty"` // MarshalComponents
	Plan    *commitPlan        `json:"plan,omitempty"`  // own commit
	AtMS    int64              `json:"at_ms"`           // local time of the step
	// TSMS is the event's timestamp (commits and proposals of others):
	// KeyPackage lifetimes are judged at it, as servers judge them
	// (docs/decisions.md, "KeyPackage lifetimes are judged at the
	// event's timestamp"); 0 in logs written before, judged at AtMS.
	TSMS     int64 `json:"ts_ms,omitempty"`
	RetainMS int64 `json:"retain_ms,omitempty"` // undo: keep undone epochs until
	// Adopted lists the state events a commit (commit, follow, join)
	// adopts, ascending: those among its DAG parents that this device
	// logged and no commit of its branch adopted. They apply before the
	// commit's changes, as servers apply them (room.ApplyState). Entries
	// written before it adopt none.
	Adopted []string `json:"adopted,omitempty"`

	// authorized is set, never logged, on another member's commit that
	// verifyCommit passed: the roster room policy authorized, which
	// applyCommit holds the processed group to before adopting it. A
	// replayed commit passed the check when it was applied.
	authorized []roomstate.Client
}

// commitPlan is what an own commit is meant to do; it is rebuilt on a new
// tip when the commit loses a race.
type commitPlan struct {
	Add         []string `json:"add,omitempty"`          // users added as members
	KeyPackages [][]byte `json:"key_packages,omitempty"` // their devices' KeyPackages
	Remove      []string `json:"remove,omitempty"`       // users removed with all their clients
	ByReference bool     `json:"by_reference,omitempty"` // commit cached proposals (e.g. SelfRemove)
	Update      bool     `json:"update,omitempty"`       // a fresh UpdatePath (key rotation)
	AddServers  []Server `json:"add_servers,omitempty"`  // servers put in the room (they vote from the next slot on)
	Purpose     string   `json:"purpose"`                // invite, add-server, remove, leave, update
	// Departed lists users who left the participant list on their own
	// (Leave's state change) but whose clients are still in the group:
	// the commit removes those clients, by reference where their
	// SelfRemove is cached in this epoch, else by value.
	Departed []string `json:"departed,omitempty"`
	// Vacate takes out the servers the commit's removals and departures
	// leave without a listed user, whatever this device's role (roomstate
	// lets any participant remove a vacated server). Plans logged before
	// it existed do so only with canChangeServers, and replay so.
	Vacate bool `json:"vacate,omitempty"`
}

// pendingCommit is an own commit submitted (or about to be) but not yet
// applied, persisted under r/<room>/pend/<hash> before submission.
type pendingCommit struct {
	Parent string      `json:"parent"`
	Seed   []byte      `json:"seed"`
	Plan   *commitPlan `json:"plan"`
	Event  string      `json:"event,omitempty"` // set once the node accepted it
	Lost   bool        `json:"lost,omitempty"`
}

// epochState is what a client keeps per epoch to move between branches.
type epochState struct {
	parent string
	snap   *mls.Snapshot
	state  *roomstate.State
	number uint64
}

// commitEvent is a commit seen on the stream.
type commitEvent struct {
	ID      string             `json:"id"`
	Parent  string             `json:"parent"`
	MLS     []byte             `json:"mls"`
	Changes []clientapi.Change `json:"changes"`
	Welcome []byte             `json:"welcome,omitempty"`
	Actor   actorJSON          `json:"actor"`
	TSMS    int64              `json:"ts_ms,omitempty"` // the event's timestamp
	// Prev are the event's DAG parents, ascending by ID bytes (nil in
	// records written before: such a commit adopts no state event).
	Prev []string `json:"prev,omitempty"`
}

// room is the device's state of one room.
type room struct {
	info    roomInfo
	g       *mls.Group       // nil until joined
	state   *roomstate.State // room state at the current epoch
	epoch   string           // current epoch: commit event ID (or the create ID)
	chain   []string         // epochs applied, oldest first
	snaps   map[string]*epochState
	commits map[string]*commitEvent // commit events seen, by ID
	pending map[string]*pendingCommit
	seq     uint64 // next log sequence number
	left    bool
	ordered bool // the node sends order lines for this room
	// joinedAt is the commit whose Welcome this device joined from.
	joinedAt string
	// undone lists own commits whose epochs were undone and must be
	// re-proposed on the new tip.
	repropose []*pendingCommit
	// resend lists own message IDs (hex) to re-send in the current epoch.
	resend []string
	// selfRemoved lists the leaves whose SelfRemove proposals the group
	// holds in the current epoch (reset with every epoch change).
	selfRemoved []mls.LeafIndex
	// states are the standalone state events logged (state-event), by
	// ID; adopted maps those a commit of the current branch adopted to
	// that commit. The others are pending: they take effect with the
	// commit that adopts them.
	states  map[string]*logEntry
	adopted map[string]string
}

func newRoom(info roomInfo) *room {
	return &room{info: info, snaps: map[string]*epochState{}, commits: map[string]*commitEvent{}, pending: map[string]*pendingCommit{},
		states: map[string]*logEntry{}, adopted: map[string]string{}}
}

// adoptable returns the state events commit ce on the current epoch
// adopts: those among its DAG parents that r logged and that no commit of
// r's branch adopted, in the order of ce.Prev (ascending by ID bytes).
func (r *room) adoptable(ce *commitEvent) []string {
	var out []string
	for _, id := range ce.Prev {
		if _, ok := r.states[id]; !ok {
			continue
		}
		if _, done := r.adopted[id]; !done {
			out = append(out, id)
		}
	}
	return out
}

// adoptStates applies the logged state events ids to st in order, each
// with its own sender as actor (room.ApplyState, as servers do).
func (r *room) adoptStates(st *roomstate.State, ids []string) (*roomstate.State, error) {
	for _, id := range ids {
		e, ok := r.states[id]
		if !ok {
			return nil, fmt.Errorf("client: adopted state event %s was not logged", id)
		}
		next, err := roomcheck.ApplyState(st, e.Actor.actor(), fromChangeJSON(e.Changes))
		if err != nil {
			return nil, fmt.Errorf("client: adopted state event %s: %w", id, err)
		}
		st = next
	}
	return st, nil
}

// markAdopted records that commit adopted the state events ids.
func (r *room) markAdopted(ids []string, commit string) {
	for _, id := range ids {
		r.adopted[id] = commit
	}
}

// pendingIDs returns the logged state events no commit of the current
// branch adopted, ascending by ID bytes (the order servers adopt them in).
func (r *room) pendingIDs() []string {
	var ids []dag.EventID
	for id := range r.states {
		if _, done := r.adopted[id]; done {
			continue
		}
		if eid, err := dag.ParseEventID(id); err == nil {
			ids = append(ids, eid)
		}
	}
	slices.SortFunc(ids, func(a, b dag.EventID) int { return bytes.Compare(a.Bytes(), b.Bytes()) })
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.String()
	}
	return out
}

// pendingState is the room state the next commit on the current epoch is
// judged against: the current state with the pending state events that
// apply, as the node names them among the commit's parents
// (room.Engine.Refs). Own commits and state changes are planned on it.
func (r *room) pendingState() *roomstate.State {
	st := r.state
	for _, id := range r.pendingIDs() {
		if next, err := r.adoptStates(st, []string{id}); err == nil {
			st = next
		}
	}
	return st
}

// roomURI is the room's MIMI URI, from its metadata.
func (r *room) roomURI() string {
	if r.state == nil {
		return ""
	}
	return string(r.state.Metadata().RoomURI)
}

func (c *Client) groupConfig() mls.GroupConfig {
	return mls.GroupConfig{RatchetTreeInWelcome: true, RetainFor: c.opts.RetainFor, RetainedEpochs: 8}
}

func epochIDBytes(id string) ([]byte, error) {
	e, err := dag.ParseEventID(id)
	if err != nil {
		return nil, fmt.Errorf("%w: event ID %q: %v", ErrBadInput, id, err)
	}
	return e.Bytes(), nil
}

func commitHash(raw []byte) string {
	h := sha256.Sum256(raw)
	return hex.EncodeToString(h[:])
}

// userOfDevice maps mimi://d/dom/user/dev to mimi://dom/u/user.
func userOfDevice(device string) string {
	rest, ok := strings.CutPrefix(device, "mimi://")
	parts := strings.Split(rest, "/")
	if !ok || len(parts) != 4 || parts[1] != "d" {
		return ""
	}
	return "mimi://" + parts[0] + "/u/" + parts[2]
}

// leafDevice returns the device URI in a member leaf's credential.
func leafDevice(g *mls.Group, leaf mls.LeafIndex) (string, bool) {
	ln, ok := g.Tree().Leaf(leaf)
	if !ok {
		return "", false
	}
	return string(ln.Credential.Identity), true
}

// rememberEpoch snapshots the current epoch for branch moves and bounds the
// number of snapshots kept (the oldest are erased).
func (r *room) rememberEpoch(parent string) {
	r.snaps[r.epoch] = &epochState{parent: parent, snap: r.g.Snapshot(), state: r.state, number: r.g.Epoch()}
	r.chain = append(r.chain, r.epoch)
	if len(r.chain) > maxSnapshots {
		old := r.chain[0]
		r.chain = r.chain[1:]
		if s, ok := r.snaps[old]; ok {
			s.snap.Erase()
			delete(r.snaps, old)
		}
	}
}

// parseState decodes room state sent as app_data_dictionary components.
func parseState(b []byte) (*roomstate.State, error) {
	comps, err := roomstate.ParseComponents(b)
	if err != nil {
		return nil, err
	}
	return roomstate.FromComponents(comps)
}

// applyCreate creates the MLS group of a room this device created.
func (c *Client) applyCreate(r *room, e *logEntry) error {
	st, err := parseState(e.State)
	if err != nil {
		return fmt.Errorf("client: create event state: %w", err)
	}
	r.state, r.epoch = st, e.Event
	if len(e.Seed) == 0 {
		return nil // created by another device: known, not joined
	}
	cfg := mls.CreateOptions{Config: c.groupConfig()}
	g, err := mls.CreateGroup(newSeededRand(e.Seed), Suite, []byte(r.info.Room), c.sig, mls.NewBasicCredential([]byte(c.id.DeviceURI)), &cfg)
	if err != nil {
		return fmt.Errorf("client: create group: %w", err)
	}
	r.g = g
	r.rememberEpoch("")
	return nil
}

// applyJoin joins the MLS group from a Welcome.
func (c *Client) applyJoin(r *room, e *logEntry) error {
	wm, err := mls.UnmarshalMLSMessage(e.Welcome)
	if err != nil || wm.Welcome == nil {
		return fmt.Errorf("client: welcome does not decode: %v", err)
	}
	kb, err := e.KP.bundle(c.sig)
	if err != nil {
		return err
	}
	epochID, err := epochIDBytes(e.Event)
	if err != nil {
		return err
	}
	g, err := mls.JoinGroup(wm.Welcome, kb, &mls.JoinOptions{Config: c.groupConfig(), EpochID: epochID})
	if err != nil {
		return fmt.Errorf("client: join from welcome: %w", err)
	}
	st, err := parseState(e.State)
	if err != nil {
		return fmt.Errorf("client: room state at join: %w", err)
	}
	r.g, r.state, r.epoch, r.left = g, st, e.Event, false
	r.selfRemoved = nil
	r.joinedAt = e.Event
	r.markAdopted(e.Adopted, e.Event)
	r.rememberEpoch(e.Parent)
	return nil
}

// applyChanges applies carried room-state changes for actor.
func applyChanges(st *roomstate.State, actor actorJSON, changes []clientapi.Change) (*roomstate.State, error) {
	for i, ch := range changes {
		next, err := roomstate.ApplyUpdate(st, actor.actor(), roomstate.ComponentID(ch.Component), ch.Update)
		if err != nil {
			return nil, fmt.Errorf("change %d (component 0x%04x): %w", i, ch.Component, err)
		}
		st = next
	}
	return st, nil
}

var errStaleCommit = errors.New("client: commit does not build on the current epoch")

// applyCommit moves the group to the epoch a commit creates. Own commits
// are rebuilt from their recorded seed and plan and merged; others are
// processed. On error the room is unchanged.
func (c *Client) applyCommit(r *room, e *logEntry) error {
	if r.g == nil {
		return ErrNotJoined
	}
	if e.Parent != r.epoch {
		return fmt.Errorf("%w: parent %s, current %s", errStaleCommit, e.Parent, r.epoch)
	}
	base, err := r.adoptStates(r.state, e.Adopted)
	if err != nil {
		return err
	}
	next, err := applyChanges(base, e.Actor, e.Changes)
	if err != nil {
		return fmt.Errorf("client: commit's room-state changes: %w", err)
	}
	epochID, err := epochIDBytes(e.Event)
	if err != nil {
		return err
	}
	at := time.UnixMilli(e.AtMS)
	if e.Plan != nil {
		pc, _, err := c.buildCommit(r, base, e.Plan, e.Seed)
		if err != nil {
			return fmt.Errorf("client: rebuild own commit: %w", err)
		}
		raw, err := pc.Message.Marshal()
		if err != nil {
			return err
		}
		if !bytes.Equal(raw, e.MLS) {
			return errors.New("client: rebuilt own commit differs from the submitted one")
		}
		if err := r.g.MergeCommit(pc, epochID, at); err != nil {
			return fmt.Errorf("client: merge own commit: %w", err)
		}
	} else {
		msg, err := mls.UnmarshalMLSMessage(e.MLS)
		if err != nil {
			return fmt.Errorf("client: commit does not decode: %w", err)
		}
		var undo *mls.Snapshot
		if e.authorized != nil {
			r.g.Expire(at) // as ProcessMessage would, so that undo holds no expired epoch
			undo = r.g.Snapshot()
			defer undo.Erase()
		}
		pm, err := r.g.ProcessMessage(msg, &mls.ProcessOptions{EpochID: epochID, Now: at, LifetimeAt: e.lifetimeAt()})
		if err != nil {
			return fmt.Errorf("client: process commit: %w", err)
		}
		removedSelf := pm.Commit != nil && pm.Commit.RemovedSelf
		if undo != nil && !removedSelf {
			// A removed device stays in its last epoch: there is no
			// roster of its own to check.
			if err := checkRoster(r.g, e.authorized); err != nil {
				g, rerr := undo.Restore()
				if rerr != nil {
					return errors.Join(err, fmt.Errorf("client: restore the group after a refused commit: %w", rerr))
				}
				r.g = g
				return err
			}
		}
		if removedSelf {
			r.left = true
		}
	}
	parent := r.epoch
	r.state, r.epoch = next, e.Event
	r.selfRemoved = nil
	r.markAdopted(e.Adopted, e.Event)
	r.rememberEpoch(parent)
	return nil
}

// applyUndo moves the room back to the epoch to (the fork point), keeping
// the undone epochs' secrets until the deadline for late messages.
func (c *Client) applyUndo(r *room, e *logEntry) error {
	s, ok := r.snaps[e.Parent]
	if !ok {
		return fmt.Errorf("client: cannot move back to epoch %s: no snapshot (beyond the rewind horizon of %d epochs)", e.Parent, maxSnapshots)
	}
	g, err := s.snap.Restore()
	if err != nil {
		return err
	}
	deadline := time.UnixMilli(e.RetainMS)
	i := slices.Index(r.chain, e.Parent)
	for _, id := range r.chain[i+1:] {
		if u, ok := r.snaps[id]; ok {
			if ug, err := u.snap.Restore(); err == nil {
				_ = g.RetainEpoch(ug, deadline)
			}
			u.snap.Erase()
			delete(r.snaps, id)
		}
	}
	undone := setOfStrings(r.chain[i+1:])
	maps.DeleteFunc(r.adopted, func(_, by string) bool { return undone[by] })
	r.chain = r.chain[:i+1]
	r.g, r.state, r.epoch = g, s.state, e.Parent
	r.selfRemoved = nil // the snapshot predates the epoch's proposals
	return nil
}

// applySent advances the own sending ratchet by one generation, as the
// original Send did (replay only: the message itself is in the sent log).
func (c *Client) applySent(r *room, e *logEntry) error {
	if r.g == nil || e.Event != r.epoch {
		return nil
	}
	_, err := r.g.Send(c.rand, nil, nil)
	return err
}

// apply dispatches one log entry.
func (c *Client) apply(r *room, e *logEntry) error {
	switch e.Op {
	case "create":
		return c.applyCreate(r, e)
	case "join":
		return c.applyJoin(r, e)
	case "commit":
		return c.applyCommit(r, e)
	case "state-event":
		// Pending: it takes effect with the commit that adopts it.
		r.states[e.Event] = e
		return nil
	case "state":
		// Logs written before state events waited for adoption applied
		// them at once; they replay so.
		next, err := applyChanges(r.state, e.Actor, e.Changes)
		if err != nil {
			return err
		}
		r.state = next
		return nil
	case "proposal":
		if r.g == nil {
			return ErrNotJoined
		}
		msg, err := mls.UnmarshalMLSMessage(e.MLS)
		if err != nil {
			return err
		}
		if _, err = r.g.ProcessMessage(msg, &mls.ProcessOptions{Now: time.UnixMilli(e.AtMS), LifetimeAt: e.lifetimeAt()}); err != nil {
			return err
		}
		if leaver, props, _ := proposalOf(msg); props != nil {
			r.selfRemoved = append(r.selfRemoved, leaver)
		}
		return nil
	case "sent":
		return c.applySent(r, e)
	case "undo":
		return c.applyUndo(r, e)
	case "leave":
		r.left = true
		return nil
	case "follow":
		next, err := r.adoptStates(r.state, e.Adopted)
		if err == nil {
			next, err = applyChanges(next, e.Actor, e.Changes)
		}
		if err == nil {
			r.state = next
		}
		r.markAdopted(e.Adopted, e.Event)
		r.epoch = e.Event
		return nil
	}
	return fmt.Errorf("%w: unknown log op %q", ErrStore, e.Op)
}

// logAndApply applies e to r and adds it to b as the room's next log entry.
func (c *Client) logAndApply(b *batch, r *room, e *logEntry) error {
	if err := c.apply(r, e); err != nil {
		return err
	}
	b.putJSON(keyRoomLog(r.info.Room, r.seq), e)
	r.seq++
	return nil
}

// loadRooms rebuilds every room from its replay log.
func (c *Client) loadRooms() error {
	var infos []roomInfo
	err := c.st.scan("r/", func(k, v []byte) error {
		if !bytes.HasSuffix(k, []byte("/info")) {
			return nil
		}
		var ri roomInfo
		if err := json.Unmarshal(v, &ri); err != nil {
			return err
		}
		infos = append(infos, ri)
		return nil
	})
	if err != nil {
		return err
	}
	for _, ri := range infos {
		r := newRoom(ri)
		err := c.st.scan(roomPrefix(ri.Room)+"log/", func(k, v []byte) error {
			var e logEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return err
			}
			if err := c.apply(r, &e); err != nil {
				return fmt.Errorf("replay entry %d (%s): %w", r.seq, e.Op, err)
			}
			r.seq = binary.BigEndian.Uint64(k[len(k)-8:]) + 1
			return nil
		})
		if err != nil {
			return fmt.Errorf("%w: room %s: %v", ErrStore, ri.Room, err)
		}
		err = c.st.scan(roomPrefix(ri.Room)+"pend/", func(k, v []byte) error {
			var p pendingCommit
			if err := json.Unmarshal(v, &p); err != nil {
				return err
			}
			r.pending[string(k[len(roomPrefix(ri.Room)+"pend/"):])] = &p
			return nil
		})
		if err != nil {
			return err
		}
		err = c.st.scan(roomPrefix(ri.Room)+"ce/", func(_, v []byte) error {
			var ce commitEvent
			if err := json.Unmarshal(v, &ce); err != nil {
				return err
			}
			r.commits[ce.ID] = &ce
			return nil
		})
		if err != nil {
			return err
		}
		r.ordered = ri.Ordered
		if r.g != nil {
			r.g.Expire(c.now())
		}
		c.rooms[ri.Room] = r
	}
	return nil
}

// lifetimeAt is the time KeyPackage lifetimes in e's MLS message are
// judged at: the event's timestamp (zero, so the local time, in logs
// written before it was recorded).
func (e *logEntry) lifetimeAt() time.Time {
	if e.TSMS == 0 {
		return time.Time{}
	}
	return time.UnixMilli(e.TSMS)
}

// setOfStrings is the set of xs.
func setOfStrings(xs []string) map[string]bool {
	set := make(map[string]bool, len(xs))
	for _, x := range xs {
		set[x] = true
	}
	return set
}

// fromChangeJSON converts logged changes back to the event's.
func fromChangeJSON(cs []clientapi.Change) []roomevent.Change {
	out := make([]roomevent.Change, len(cs))
	for i, ch := range cs {
		out[i] = roomevent.Change{Component: ch.Component, Update: ch.Update}
	}
	return out
}
