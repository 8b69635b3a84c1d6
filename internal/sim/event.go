package sim

import (
	"fmt"

	"github.com/rhizome-chat/rhizome/consensus"
	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/internal/roomevent"
)

// simLimits bounds each simulated store's pending events. Partitions and
// lost packets leave many events waiting for parents until the next sync,
// so the bounds are far above dag.DefaultLimits: the simulator must not
// drop honest events the scenarios count on.
var simLimits = dag.Limits{PendingPerRoom: 1 << 20, PendingPerOrigin: 1 << 20}

// cid converts a DAG event ID to the consensus package's.
func cid(id dag.EventID) consensus.EventID { return consensus.EventID(id.Bytes()) }

// did converts a consensus event ID back (the zero ID if it is none).
func did(id consensus.EventID) dag.EventID {
	out, _ := dag.EventIDFromBytes([]byte(id))
	return out
}

func isVote(k dag.Kind) bool { return k == dag.KindSeal || k == dag.KindAck || k == dag.KindSuspect }

// isOrdering reports whether events of kind k are the ordering layer's
// input: commits and votes.
func isOrdering(k dag.Kind) bool { return k == dag.KindCommit || isVote(k) }

// toInput decodes a stored commit or vote into the ordering layer's input,
// independently of the room engine, for the checks' ForkChoice. The
// simulated room never changes its servers, so no commit carries a
// membership.
func toInput(ev *dag.Event) (consensus.Event, error) {
	in := consensus.Event{ID: cid(ev.ID()), From: consensus.ServerID(ev.Origin)}
	switch ev.Kind {
	case dag.KindCommit:
		c, err := roomevent.DecodeCommit(ev.Content)
		if err != nil {
			return in, err
		}
		in.Commit = &consensus.Commit{Parent: cid(c.Parent)}
	case dag.KindSeal:
		s, err := consensus.ParseSeal(ev.Content)
		if err != nil {
			return in, err
		}
		in.Seal = &s
	case dag.KindAck:
		a, err := consensus.ParseAck(ev.Content)
		if err != nil {
			return in, err
		}
		in.Ack = &a
	case dag.KindSuspect:
		s, err := consensus.ParseSuspect(ev.Content)
		if err != nil {
			return in, err
		}
		in.Suspect = &s
	default:
		return in, fmt.Errorf("sim: %v is not an ordering event", ev.Kind)
	}
	return in, nil
}
