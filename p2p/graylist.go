package p2p

import (
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// A misbehaving peer is disconnected and blocked at the gater, with an
// exponential backoff for repeat offenders ([Gater.Punish]), when either
//
//   - its local penalty reaches the block threshold (offend), or
//   - its gossipsub score, sampled once a second, is below the graylist
//     threshold while it is connected (graylistScores).
//
// gossipsub alone would only ignore a graylisted peer's messages and keep
// its connection and streams. The mesh also refuses a blocked peer's
// streams and closes its connections as they come up ([Mesh.blocked]), so a
// block holds on hosts without the gater installed (mocknet) too.

// punish disconnects p and blocks it for BlockDuration, doubled for each
// earlier block of p in a row. why names the cause for the log and value
// its measure (penalty or score).
func (m *Mesh) punish(p peer.ID, why string, value float64) {
	if d, strike := m.cfg.Gater.Punish(p, m.cfg.BlockDuration); d > 0 {
		m.log.Warn("blocking peer", "peer", p.ShortString(), "reason", why, "value", value, "for", d, "strike", strike)
	}
	m.dial.forget(p)
	_ = m.h.Network().ClosePeer(p)
}

// graylistScores punishes every connected peer whose gossipsub score is
// below the graylist threshold. It runs on pubsub's score sampler.
func (m *Mesh) graylistScores(scores map[peer.ID]float64) {
	if m.ctx.Err() != nil {
		return
	}
	for p, s := range scores {
		if s < scoreThresholds.GraylistThreshold && m.h.Network().Connectedness(p) == network.Connected {
			m.punish(p, "graylist", s)
		}
	}
}
