package p2p

import (
	"fmt"
	"math"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/rhizome-chat/rhizome/dag"
)

// Offense is the small set of reasons for which a peer is scored down. Every
// rejection of peer input maps to one of them (see [offenseOf]).
type Offense uint8

// Offenses.
const (
	// OffenseMalformed: bytes that do not decode (event, message or frame).
	OffenseMalformed Offense = iota + 1
	// OffenseOversize: an event or frame above its size limit.
	OffenseOversize
	// OffenseBadSignature: an event whose origin signature does not verify.
	OffenseBadSignature
	// OffenseBadHash: an event that is not the one its ID names, or an ID of
	// a forbidden hash function.
	OffenseBadHash
	// OffenseUnsolicited: an event that answers no question asked (not a
	// requested ID, not an ancestor of one), or of another room.
	OffenseUnsolicited
)

var offenseNames = [...]string{"", "malformed", "oversize", "bad-signature", "bad-hash", "unsolicited"}

// String returns the offense name.
func (o Offense) String() string {
	if o > 0 && int(o) < len(offenseNames) {
		return offenseNames[o]
	}
	return fmt.Sprintf("offense(%d)", uint8(o))
}

// offenseOf maps an event rejection from package dag to an offense. Reasons
// that depend on local state (unknown room) are not offenses: ok is false.
func offenseOf(err error) (Offense, bool) {
	r, ok := dag.ReasonOf(err)
	if !ok {
		return OffenseMalformed, true
	}
	switch r {
	case dag.ReasonOversize:
		return OffenseOversize, true
	case dag.ReasonBadSignature:
		return OffenseBadSignature, true
	case dag.ReasonBadHash:
		return OffenseBadHash, true
	case dag.ReasonUnknownRoom:
		return 0, false
	default:
		return OffenseMalformed, true
	}
}

// Scoring parameters of the local misbehaviour ledger.
const (
	// forgeryPenalty is added for an event that fails its signature or hash
	// check: no honest server sends one (transport integrity rules out bit
	// flips), so two of them block a peer.
	forgeryPenalty = 50.0
	// malformedPenalty is added for undecodable or oversized input, which a
	// server of a newer or buggy version might send.
	malformedPenalty = 25.0
	// unsolicitedPenalty is added for an event nobody asked for.
	unsolicitedPenalty = 10.0
	// blockThreshold: a peer at or above this penalty is disconnected and
	// refused by the gater for BlockDuration. Two forgeries or four
	// malformed messages within a few minutes reach it.
	blockThreshold = 90.0
	// penaltyHalfLife: penalties halve every 5 minutes.
	penaltyHalfLife = 5 * time.Minute
)

// ledger is the local record of peer misbehaviour. Its penalty feeds the
// gossipsub application-specific score (P5), so a peer that misbehaves on the
// sync protocol also loses its standing in gossip, and it decides when a
// peer is blocked.
type ledger struct {
	now func() time.Time

	mu    sync.Mutex
	peers map[peer.ID]*standing
}

type standing struct {
	penalty float64
	at      time.Time
	counts  [len(offenseNames)]int
}

func newLedger(now func() time.Time) *ledger {
	return &ledger{now: now, peers: make(map[peer.ID]*standing)}
}

func (l *ledger) decayed(s *standing, now time.Time) float64 {
	dt := now.Sub(s.at)
	if dt <= 0 {
		return s.penalty
	}
	return s.penalty * math.Exp2(-float64(dt)/float64(penaltyHalfLife))
}

// record adds an offense and returns the new penalty.
func (l *ledger) record(p peer.ID, o Offense) float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	s := l.peers[p]
	if s == nil {
		s = &standing{}
		l.peers[p] = s
	}
	s.penalty = l.decayed(s, now)
	s.at = now
	switch o {
	case OffenseBadSignature, OffenseBadHash:
		s.penalty += forgeryPenalty
	case OffenseUnsolicited:
		s.penalty += unsolicitedPenalty
	default:
		s.penalty += malformedPenalty
	}
	if int(o) < len(s.counts) {
		s.counts[o]++
	}
	return s.penalty
}

// penalty returns p's current (decayed) penalty.
func (l *ledger) penalty(p peer.ID) float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.peers[p]
	if s == nil {
		return 0
	}
	return l.decayed(s, l.now())
}

// count returns how many offenses of kind o p has committed.
func (l *ledger) count(p peer.ID, o Offense) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.peers[p]
	if s == nil || int(o) >= len(s.counts) {
		return 0
	}
	return s.counts[o]
}

// Gossipsub score thresholds. One invalid message (P4 = -100 x 1^2) brings a
// peer to the gossip threshold; two (-400) graylist it.
var scoreThresholds = pubsub.PeerScoreThresholds{
	GossipThreshold:             -100,
	PublishThreshold:            -200,
	GraylistThreshold:           -400,
	AcceptPXThreshold:           10,
	OpportunisticGraftThreshold: 1,
}

// peerScoreParams are the global score parameters. IP colocation (P6) is off:
// federated servers legitimately share hosting providers and, in tests, one
// address. Topic parameters are set per room topic (roomScoreParams).
func peerScoreParams(app func(peer.ID) float64) *pubsub.PeerScoreParams {
	return &pubsub.PeerScoreParams{
		Topics:                    map[string]*pubsub.TopicScoreParams{},
		TopicScoreCap:             50,
		AppSpecificScore:          app,
		AppSpecificWeight:         1,
		IPColocationFactorWeight:  0,
		BehaviourPenaltyWeight:    -10,
		BehaviourPenaltyThreshold: 6,
		BehaviourPenaltyDecay:     0.9,
		DecayInterval:             time.Second,
		DecayToZero:               0.01,
		RetainScore:               10 * time.Minute,
	}
}

// roomScoreParams are the per-room topic parameters. P3 (mesh delivery
// deficit) is off because rooms are often quiet for hours and a quiet room
// must not make its peers look bad.
func roomScoreParams() *pubsub.TopicScoreParams {
	return &pubsub.TopicScoreParams{
		TopicWeight:                    1,
		TimeInMeshWeight:               0.01,
		TimeInMeshQuantum:              time.Second,
		TimeInMeshCap:                  3600,
		FirstMessageDeliveriesWeight:   1,
		FirstMessageDeliveriesDecay:    0.9,
		FirstMessageDeliveriesCap:      20,
		InvalidMessageDeliveriesWeight: -100,
		InvalidMessageDeliveriesDecay:  0.995, // per second: half-life about 2.3 minutes
	}
}
