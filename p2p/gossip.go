package p2p

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/rhizome-chat/rhizome/dag"
)

// TopicPrefix starts every room topic. The rest of the name is a hash of
// the room ID in lowercase hex ([TopicName]), so that a peer that sees a
// topic name (pubsub's hello lists every topic a server joined) does not
// learn the room ID.
const TopicPrefix = "/rhizome/room/2/"

// topicDomain separates the topic hash from every other use of SHA-256.
const topicDomain = "rhizome topic v2"

// maxGossipMessage bounds a gossip message: an event plus headroom for the
// pubsub envelope. Larger messages never reach the validator.
const maxGossipMessage = dag.MaxEventSize + 4<<10

// scoreInspectPeriod is how often gossipsub scores are sampled for
// [Mesh.GossipScore].
const scoreInspectPeriod = time.Second

// hintRate bounds, per forwarding peer, the pulls scheduled for gossip
// events whose origin is not (yet) a writer of the room.
var hintRate = Rate{PerSecond: 10, Burst: 50}

// foreignRate is how much gossip of a room a peer that does not participate
// in it may forward before each further message scores it down. An honest
// server can forward some while this node lags behind the room (the commit
// that added it is not processed here yet, or was made on the other side of
// a partition), so the first messages are only ignored; a sustained stream
// is an attack and leads to a block.
var foreignRate = Rate{PerSecond: 1, Burst: 64}

// TopicName returns the gossip topic of room: TopicPrefix followed by the
// lowercase hex of SHA-256("rhizome topic v2" || room ID bytes). A server
// of the room computes it; the name does not reveal the room ID.
func TopicName(room dag.RoomID) string {
	h := sha256.New()
	h.Write([]byte(topicDomain))
	h.Write(room[:])
	return TopicPrefix + hex.EncodeToString(h.Sum(nil))
}

// messageID is the gossip message ID: the event ID of the payload, so that
// gossip's duplicate suppression is exactly the DAG's. Undecodable payloads
// get a hash of the bytes (under a prefix no event ID can have), and the
// validator rejects them.
func messageID(m *pb.Message) string {
	ev, err := dag.Decode(m.Data)
	if err != nil {
		sum := sha256.Sum256(m.Data)
		return "invalid:" + string(sum[:])
	}
	id := ev.ID()
	return string(id[:])
}

func (m *Mesh) newPubSub(ctx context.Context) (*pubsub.PubSub, error) {
	opts := []pubsub.Option{
		pubsub.WithMessageIdFn(messageID),
		// Events carry their own origin signature; pubsub's envelope
		// signature would only add bytes and a second identity.
		pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign),
		pubsub.WithNoAuthor(),
		pubsub.WithMaxMessageSize(maxGossipMessage),
		// Flood publishing sends to every subscriber of a topic without
		// asking the peer filter; the mesh and the filter keep a room's
		// gossip among its servers.
		pubsub.WithFloodPublish(false),
		pubsub.WithPeerExchange(false),
		pubsub.WithPeerFilter(m.gossipPeerFilter),
		pubsub.WithSubscriptionFilter(subscriptionFilter{m}),
		pubsub.WithPeerScore(peerScoreParams(m.appScore), &scoreThresholds),
		pubsub.WithPeerScoreInspect(pubsub.PeerScoreInspectFn(m.recordScores), scoreInspectPeriod),
		pubsub.WithLogger(m.log.With("sys", "pubsub")),
	}
	if m.cfg.GossipParams != nil {
		opts = append(opts, pubsub.WithGossipSubParams(*m.cfg.GossipParams))
	}
	// pubsub runs on a host that keeps it from peers sharing no joined
	// room with this server (pubsubHost).
	ps, err := pubsub.NewGossipSub(ctx, &pubsubHost{Host: m.h, m: m}, opts...)
	if err != nil {
		return nil, fmt.Errorf("p2p: gossipsub: %w", err)
	}
	return ps, nil
}

// appScore is gossipsub's application-specific score (P5): the local
// misbehaviour penalty scaled so that a peer at the block threshold is at
// the graylist threshold in gossip too.
func (m *Mesh) appScore(p peer.ID) float64 {
	return m.ledger.penalty(p) * scoreThresholds.GraylistThreshold / blockThreshold
}

func (m *Mesh) recordScores(scores map[peer.ID]float64) {
	defer m.graylistScores(scores) // after the unlock
	m.scoreMu.Lock()
	defer m.scoreMu.Unlock()
	clear(m.scores)
	for p, s := range scores {
		m.scores[p] = s
	}
}

// gossipPeerFilter keeps a room's gossip among its participants: pubsub asks
// it before sending a topic's messages or control traffic to a peer.
func (m *Mesh) gossipPeerFilter(p peer.ID, topic string) bool {
	m.mu.RLock()
	room, ok := m.topics[topic]
	m.mu.RUnlock()
	if !ok {
		return false
	}
	return m.participates(room, p) && m.ledger.penalty(p) < blockThreshold
}

// joinTopic joins the room's topic with its validator and score parameters.
// The caller must not hold m.mu.
func (m *Mesh) joinTopic(id dag.RoomID) (*room, error) {
	name := TopicName(id)
	if err := m.ps.RegisterTopicValidator(name, m.validator(id)); err != nil {
		return nil, fmt.Errorf("p2p: register validator: %w", err)
	}
	t, err := m.ps.Join(name)
	if err != nil {
		_ = m.ps.UnregisterTopicValidator(name)
		return nil, fmt.Errorf("p2p: join %s: %w", name, err)
	}
	fail := func(err error) (*room, error) {
		_ = t.Close()
		_ = m.ps.UnregisterTopicValidator(name)
		return nil, err
	}
	if err := t.SetScoreParams(roomScoreParams()); err != nil {
		return fail(fmt.Errorf("p2p: topic score params: %w", err))
	}
	sub, err := t.Subscribe(pubsub.WithBufferSize(1024))
	if err != nil {
		return fail(fmt.Errorf("p2p: subscribe %s: %w", name, err))
	}
	return &room{id: id, topic: t, sub: sub, done: make(chan struct{})}, nil
}

func (r *room) stop() {
	r.sub.Cancel()
	<-r.done
	_ = r.topic.Close()
}

// validator is the room topic's gossip validator. Its checks run cheapest
// first, and nothing is decoded for a peer that may not send:
//
//  1. the forwarding peer participates in the room, else reject (and an
//     unsolicited offense), or only ignore when it is a writer of the
//     room (a server of it in some state seen, removed since or added on
//     another branch);
//  2. size, decoding (which includes the canonical form and the hash
//     function of every ID) and the room matching the topic, else reject
//     (and the offense);
//  3. an event already stored is ignored without further work;
//  4. admission ([Mesh.admit]): the room's create event, or an origin that
//     is a writer of the room, else ignore: never relayed or stored. The
//     forwarder is a room server that may know of a commit adding the
//     origin that this server lacks, so a pull of the event is scheduled
//     from it (rate-limited per forwarder), which stores it with its
//     ancestors if they admit it;
//  5. the per-origin and per-room gossip rates, else ignore (sync brings
//     the events later);
//  6. the origin signature, else reject (and the offense).
//
// Ignoring does not score the forwarder down: what depends on local state
// (authorization, unknown parents, rates) can at worst be ignored. For an
// event published here (the node authorized its own) only steps 2 and 6
// run (checkGossip).
func (m *Mesh) validator(id dag.RoomID) pubsub.ValidatorEx {
	return func(_ context.Context, _ peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
		from := msg.ReceivedFrom
		if from == m.h.ID() {
			ev, _, err := checkGossip(id, msg.Data, m.verifier.Verify)
			if err != nil {
				return pubsub.ValidationReject
			}
			msg.ValidatorData = ev
			return pubsub.ValidationAccept
		}
		if !m.participates(id, from) {
			// Never decoded, stored or relayed. A server of the room in
			// some state seen (removed since, or added on another branch)
			// is not scored down; anyone else is, past foreignRate.
			m.rejected.add(RejectNotParticipant)
			if sid, ok := serverID(from); ok && m.cfg.ACL.Writer(id, sid) {
				return pubsub.ValidationIgnore
			}
			if !m.foreignLimit.allow(from) {
				m.offend(from, OffenseUnsolicited, fmt.Errorf("%w: gossip of room %v from a peer that does not participate in it", ErrNotAdmitted, id))
			}
			return pubsub.ValidationIgnore
		}
		ev, off, err := decodeGossip(id, msg.Data)
		if err != nil {
			m.offend(from, off, err)
			return pubsub.ValidationReject
		}
		if res := m.admitGossip(id, from, ev); res != pubsub.ValidationAccept {
			return res
		}
		if err := m.verifier.Verify(ev); err != nil {
			m.offend(from, OffenseBadSignature, err)
			return pubsub.ValidationReject
		}
		msg.ValidatorData = ev
		return pubsub.ValidationAccept
	}
}

// admitGossip runs the validator's state-dependent steps (3 to 5) on a
// decoded event forwarded by from: ValidationAccept lets it on to the
// signature check; a store failure ignores the event.
func (m *Mesh) admitGossip(room dag.RoomID, from peer.ID, ev *dag.Event) pubsub.ValidationResult {
	has, err := m.cfg.Store.Has(ev.ID())
	if err != nil {
		m.log.Warn("gossip: store lookup", "room", room, "event", ev.ID(), "err", err)
		return pubsub.ValidationIgnore
	}
	if has {
		return pubsub.ValidationIgnore
	}
	if err := m.admit(room, ev); err != nil {
		// Logged at Info as often as a pull is scheduled (the hint rate),
		// so that a forwarder cannot flood the log; the count is exact.
		if m.hintLimit.allow(from) {
			m.log.Info("gossip event ignored; pulling it with its ancestors", "room", room, "event", ev.ID(), "from", from.ShortString(), "err", err)
			m.pulls.schedule(room, from, []dag.EventID{ev.ID()})
		} else {
			m.log.Debug("gossip event ignored", "room", room, "event", ev.ID(), "from", from.ShortString(), "err", err)
		}
		return pubsub.ValidationIgnore
	}
	if r := m.rate.allow(room, ev.Origin); r != 0 {
		err := m.refuse(r, room, ev)
		m.log.Debug("gossip event ignored", "room", room, "event", ev.ID(), "from", from.ShortString(), "err", err)
		return pubsub.ValidationIgnore
	}
	return pubsub.ValidationAccept
}

// checkGossip runs the stateless checks on a gossip payload (decodeGossip,
// then the signature with verify: Event.Verify, or a Verifier's
// Verify, which batches the checks of concurrent validators).
func checkGossip(room dag.RoomID, data []byte, verify func(*dag.Event) error) (*dag.Event, Offense, error) {
	ev, off, err := decodeGossip(room, data)
	if err != nil {
		return nil, off, err
	}
	if err := verify(ev); err != nil {
		return nil, OffenseBadSignature, err
	}
	return ev, 0, nil
}

// decodeGossip checks a gossip payload's size, decodes it and checks its
// room.
func decodeGossip(room dag.RoomID, data []byte) (*dag.Event, Offense, error) {
	if len(data) > dag.MaxEventSize {
		return nil, OffenseOversize, fmt.Errorf("p2p: gossip message of %d bytes", len(data))
	}
	ev, err := dag.Decode(data)
	if err != nil {
		off, _ := offenseOf(err)
		return nil, off, err
	}
	if ev.RoomID() != room {
		return nil, OffenseUnsolicited, fmt.Errorf("%w: %v on the topic of %v", ErrWrongRoom, ev.RoomID(), room)
	}
	return ev, 0, nil
}

// readRoom delivers a room's gossip to the store. An event whose parents are
// missing is held pending by the store and triggers a pull of the missing
// ancestors from the peer that forwarded it: gossip is never the recovery
// path, sync is.
func (m *Mesh) readRoom(r *room) {
	defer close(r.done)
	for {
		msg, err := r.sub.Next(m.ctx)
		if err != nil {
			return
		}
		if msg.ReceivedFrom == m.h.ID() {
			continue // published here, stored by Publish
		}
		ev, ok := msg.ValidatorData.(*dag.Event)
		if !ok {
			continue
		}
		m.accept(r.id, msg.ReceivedFrom, ev)
	}
}

// accept hands a gossiped event to the store, admission checked again (the
// ACL may have changed since the validator ran), and schedules the pull
// its outcome calls for.
func (m *Mesh) accept(room dag.RoomID, from peer.ID, ev *dag.Event) {
	if err := m.admit(room, ev); err != nil {
		m.log.Info("gossip event not stored", "room", room, "event", ev.ID(), "from", from.ShortString(), "err", err)
		return
	}
	res, err := m.cfg.Store.Put(ev)
	var pf *dag.PendingFullError
	switch {
	case err == nil:
		m.stored(room, res)
		if len(res.Missing) > 0 {
			m.pulls.schedule(room, from, res.Missing)
		}
	case errors.Is(err, dag.ErrUnknownRoom):
		// We lack the room's beginning: pull the event's whole ancestry.
		m.pulls.schedule(room, from, []dag.EventID{ev.ID()})
	case errors.As(err, &pf):
		m.pulls.schedule(room, from, []dag.EventID{ev.ID()})
	default:
		// A state-dependent rejection (for example a parent in another
		// room): the forwarder may not know, so it is not scored.
		m.log.Info("gossip event not stored", "room", room, "event", ev.ID(), "from", from.ShortString(), "err", err)
	}
}

func shuffle[T any](s []T) {
	rand.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
}
