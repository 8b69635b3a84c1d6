package sim

import (
	"errors"
	"fmt"
	"time"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/internal/roomevent"
	"github.com/rhizome-chat/rhizome/mls"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// The clients' MLS devices. Every client has one device in the room's MLS
// group (cipher suite 1). A device keeps its group state at each epoch it
// reached, as a snapshot to build commits on and a live group whose
// application ratchet sends messages. It reaches an epoch the way a client
// follows its server: only when it needs it (to commit or send there) does
// it process the commits from the nearest epoch it holds, or join by the
// Welcome of the group's first commit. Every commit the run makes is kept
// (commitInfo) for that. All randomness comes from the run's seeded
// ChaCha8 stream, so a seed replays exactly.

const suite = mls.MLS128DHKEMX25519AES128GCMSHA256Ed25519

// groupConfig is every device's group policy: Welcomes carry the tree.
var groupConfig = mls.GroupConfig{RatchetTreeInWelcome: true}

type device struct {
	user, id string // MIMI user and client URIs
	sig      mls.SignaturePrivateKey
	kb       *mls.KeyPackageBundle // joins by a first commit's Welcome (nil for the creator)
	snaps    map[dag.EventID]*mls.Snapshot
	live     map[dag.EventID]*mls.Group
}

// commitInfo is what the simulator keeps of every commit it made: the MLS
// commit for the other devices to process, the Welcome of a first commit,
// and the change it carries, if any (the checks need the change and the
// slot).
type commitInfo struct {
	parent  dag.EventID
	changes []string // change IDs; none for the setup commit and an equivocator's twin
	msg     *mls.MLSMessage
	welcome *mls.Welcome
}

// msgRef is what the checks read of a message event: its message ID (also
// in the PrivateMessage's authenticated data) and its epoch.
type msgRef struct {
	id    string
	epoch dag.EventID
}

// errNoState reports that a device holds no group state at the epoch it
// was asked to act in (a device that is not the creator, at the create
// event).
var errNoState = errors.New("sim: the device has no group state at that epoch")

// newDevice makes client i's device (homed at server home), with a
// KeyPackage unless it is the creator, who starts the group at the create
// event.
func (w *world) newDevice(i, home int) (*device, error) {
	d := &device{user: userURI(i, home), id: deviceURI(i, home),
		snaps: map[dag.EventID]*mls.Snapshot{}, live: map[dag.EventID]*mls.Group{}}
	var err error
	if d.sig, _, err = suite.GenerateSignatureKeyPair(w.mlsRand); err != nil {
		return nil, err
	}
	cred := mls.NewBasicCredential([]byte(d.id))
	if i != 0 {
		d.kb, err = mls.NewKeyPackage(w.mlsRand, suite, d.sig, cred, nil)
		return d, err
	}
	g, err := mls.CreateGroup(w.mlsRand, suite, []byte(w.room.String()), d.sig, cred, &mls.CreateOptions{Config: groupConfig})
	if err != nil {
		return nil, err
	}
	d.snaps[w.create.ID()], d.live[w.create.ID()] = g.Snapshot(), g
	return d, nil
}

// sender is the device as the sender of its room events.
func (d *device) sender() roomevent.Sender { return roomevent.Sender{User: d.user, Client: d.id} }

// group returns d's group state at epoch e (a commit the run made, or the
// create event), reaching it from the nearest epoch d holds.
func (w *world) group(d *device, e dag.EventID) (*mls.Snapshot, error) {
	if s, ok := d.snaps[e]; ok {
		return s, nil
	}
	ci := w.commits[e]
	if ci == nil {
		return nil, errNoState
	}
	var g *mls.Group
	var err error
	if ci.parent == w.create.ID() {
		if ci.welcome == nil || d.kb == nil {
			return nil, errNoState
		}
		g, err = mls.JoinGroup(ci.welcome, d.kb, &mls.JoinOptions{Config: groupConfig, EpochID: e.Bytes()})
	} else {
		var ps *mls.Snapshot
		if ps, err = w.group(d, ci.parent); err != nil {
			return nil, err
		}
		if g, err = ps.Restore(); err == nil {
			_, err = g.ProcessMessage(ci.msg, &mls.ProcessOptions{EpochID: e.Bytes()})
		}
	}
	if err != nil {
		return nil, fmt.Errorf("sim: device %s reaching epoch %v: %w", d.id, e, err)
	}
	s := g.Snapshot()
	d.snaps[e], d.live[e] = s, g
	return s, nil
}

// canAct reports whether d holds, or can reach, a group state at epoch e.
func (w *world) canAct(d *device, e dag.EventID) bool {
	_, err := w.group(d, e)
	return err == nil
}

// makeCommit builds client c's commit on parent, signed by server s: on
// the create event the group's first commit (the epoch-0 GroupInfo, the
// other clients' devices added with their participant entries), else a
// path update stapling a room-name change to name (which carries the
// change IDs with their attempts). Client c's device moves to the new
// epoch at once.
func (w *world) makeCommit(c *client, s *server, parent dag.EventID, name string, changes []string) (*dag.Event, error) {
	d := c.dev
	ps, err := w.group(d, parent)
	if err != nil {
		return nil, err
	}
	g, err := ps.Restore()
	if err != nil {
		return nil, err
	}
	st, err := s.eng.StateAt(parent)
	if err != nil {
		return nil, err
	}
	content := &roomevent.Commit{Sender: d.sender(), Parent: parent}
	opts := &mls.CommitOptions{ForcePath: true}
	var op roomstate.Op
	if parent == w.create.ID() {
		gi, err := g.GroupInfo(true)
		if err != nil {
			return nil, err
		}
		if content.GroupInfo, err = (&mls.MLSMessage{Version: mls.ProtocolVersionMLS10, WireFormat: mls.WireFormatGroupInfo, GroupInfo: gi}).Marshal(); err != nil {
			return nil, err
		}
		up := &roomstate.ParticipantUpdate{}
		for _, o := range w.clients {
			if o.dev.kb != nil {
				opts.Proposals = append(opts.Proposals, &mls.AddProposal{KeyPackage: *o.dev.kb.KeyPackage})
				up.Added = append(up.Added, roomstate.UserRole{User: roomstate.URI(o.dev.user), Role: roomstate.RoleMember})
			}
		}
		opts.ForcePath = len(opts.Proposals) == 0
		if len(up.Added) > 0 {
			op = up
		}
	} else {
		md := st.Metadata()
		md.Name = name
		op = &roomstate.MetadataUpdate{Metadata: md}
	}
	if op != nil {
		comp, update, err := roomstate.EncodeOp(st, op)
		if err != nil {
			return nil, err
		}
		content.Changes = []roomevent.Change{{Component: uint16(comp), Update: update}}
	}
	pc, err := g.Commit(w.mlsRand, opts)
	if err != nil {
		return nil, err
	}
	if content.Commit, err = pc.Message.Marshal(); err != nil {
		return nil, err
	}
	if pc.Welcome != nil {
		if content.Welcome, err = (&mls.MLSMessage{Version: mls.ProtocolVersionMLS10, WireFormat: mls.WireFormatWelcome, Welcome: pc.Welcome}).Marshal(); err != nil {
			return nil, err
		}
	}
	raw, err := content.Marshal()
	if err != nil {
		return nil, err
	}
	ev, err := s.sign(dag.KindCommit, raw)
	if err != nil {
		return nil, err
	}
	id := ev.ID()
	if err := g.MergeCommit(pc, id.Bytes(), time.Time{}); err != nil {
		return nil, err
	}
	d.snaps[id], d.live[id] = g.Snapshot(), g
	w.commits[id] = &commitInfo{parent: parent, changes: changes, msg: pc.Message, welcome: pc.Welcome}
	return ev, nil
}

// makeMessage builds client c's application message id (its attempt-th
// copy) in epoch, signed by server s: a PrivateMessage from the device's
// group there, with the message ID as authenticated data.
func (w *world) makeMessage(c *client, s *server, epoch dag.EventID, id string, attempt int) (*dag.Event, error) {
	if _, err := w.group(c.dev, epoch); err != nil {
		return nil, err
	}
	pm, err := c.dev.live[epoch].Send(w.mlsRand, []byte(id), fmt.Appendf(nil, "%s#%d", id, attempt))
	if err != nil {
		return nil, err
	}
	msg, err := pm.Marshal()
	if err != nil {
		return nil, err
	}
	raw, err := (&roomevent.Message{Sender: c.dev.sender(), Epoch: epoch, Message: msg}).Marshal()
	if err != nil {
		return nil, err
	}
	ev, err := s.sign(dag.KindMessage, raw)
	if err != nil {
		return nil, err
	}
	w.messages[ev.ID()] = msgRef{id: id, epoch: epoch}
	return ev, nil
}
