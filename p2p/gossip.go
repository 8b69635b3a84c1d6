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

// TopicPrefix starts every room topic. The rest of the name is the room ID
// in lowercase hex (the 34-byte multihash): "/rhizome/room/1/1220ab...".
const TopicPrefix = "/rhizome/room/1/"

// maxGossipMessage bounds a gossip message: an event plus headroom for the
// pubsub envelope. Larger messages never reach the validator.
const maxGossipMessage = dag.MaxEventSize + 4<<10

// scoreInspectPeriod is how often gossipsub scores are sampled for
// [Mesh.GossipScore].
const scoreInspectPeriod = time.Second

func topicName(room dag.RoomID) string { return TopicPrefix + hex.EncodeToString(room[:]) }

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
		pubsub.WithFloodPublish(true),
		pubsub.WithPeerExchange(false),
		pubsub.WithPeerFilter(m.gossipPeerFilter),
		pubsub.WithPeerScore(peerScoreParams(m.appScore), &scoreThresholds),
		pubsub.WithPeerScoreInspect(pubsub.PeerScoreInspectFn(m.recordScores), scoreInspectPeriod),
		pubsub.WithLogger(m.log.With("sys", "pubsub")),
	}
	if m.cfg.GossipParams != nil {
		opts = append(opts, pubsub.WithGossipSubParams(*m.cfg.GossipParams))
	}
	ps, err := pubsub.NewGossipSub(ctx, m.h, opts...)
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
	name := topicName(id)
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

// validator is the room topic's gossip validator. It runs only the checks
// that do not depend on local state: size, decoding (which includes the
// canonical form and the hash function of every ID), the room matching the
// topic, and the origin signature. Only these reject (and score down the
// forwarding peer); everything that depends on possibly stale state (unknown
// parents, unknown room, authorization) is handled after delivery, where it
// can at worst be ignored.
func (m *Mesh) validator(id dag.RoomID) pubsub.ValidatorEx {
	return func(_ context.Context, from peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
		ev, off, err := checkGossip(id, msg.Data, m.verifier.Verify)
		if err != nil {
			if from != m.h.ID() {
				m.offend(msg.ReceivedFrom, off, err)
			}
			return pubsub.ValidationReject
		}
		msg.ValidatorData = ev
		return pubsub.ValidationAccept
	}
}

// checkGossip runs the stateless checks on a gossip payload, with verify
// checking the signature (Event.Verify, or a dag.Verifier's Verify, which
// batches the checks of concurrent validators).
func checkGossip(room dag.RoomID, data []byte, verify func(*dag.Event) error) (*dag.Event, Offense, error) {
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
	if err := verify(ev); err != nil {
		return nil, OffenseBadSignature, err
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

// accept hands a gossiped event to the store and schedules the pull its
// outcome calls for.
func (m *Mesh) accept(room dag.RoomID, from peer.ID, ev *dag.Event) {
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
