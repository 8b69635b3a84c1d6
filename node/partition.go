package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
)

// isolationBlock is how long the gater refuses a peer during an isolation;
// Heal lifts the block long before it ends.
const isolationBlock = 100 * 365 * 24 * time.Hour

// ErrNotRunning means the node has no federation transport (not started,
// or stopped).
var ErrNotRunning = errors.New("node: not running")

// Isolation is a node cut off from the federation by [Node.Isolate]: an
// operator or test control that simulates a network partition with the real
// transport. While it lasts, the node refuses every connection to and from
// other servers (through the host's connection gater), so its rooms go on
// with the servers it can reach, which are none; its client API keeps
// serving its own users. [Isolation.Heal] ends it.
type Isolation struct {
	n *Node

	mu      sync.Mutex
	healed  bool
	blocked map[peer.ID]bool // peers this isolation blocked (not those blocked before)
	notifee *network.NotifyBundle
}

// Isolate cuts the node off the federation: it blocks every server the
// node knows (its peer store, which holds the bootstrap peers and every
// server it has met), closes the open connections, and closes any new
// connection as it is made (a server met for the first time is blocked
// too). Events the node's users submit meanwhile stay in its store and
// reach the other servers by sync once healed. Isolate fails with
// ErrNotRunning if the node is not started.
func (n *Node) Isolate() (*Isolation, error) {
	if n.mesh == nil || n.gater == nil {
		return nil, ErrNotRunning
	}
	h := n.mesh.Host()
	iso := &Isolation{n: n, blocked: map[peer.ID]bool{}}
	iso.notifee = &network.NotifyBundle{
		ConnectedF: func(_ network.Network, c network.Conn) {
			p := c.RemotePeer()
			if !iso.block(p) {
				return
			}
			go func() { // not inside the notification
				if !iso.isHealed() {
					_ = h.Network().ClosePeer(p)
				}
			}()
		},
	}
	h.Network().Notify(iso.notifee)
	peers := slices.Concat(h.Peerstore().Peers(), h.Network().Peers())
	for _, p := range peers {
		if p == h.ID() {
			continue
		}
		iso.block(p)
	}
	for _, p := range peers {
		if p != h.ID() {
			_ = h.Network().ClosePeer(p)
		}
	}
	n.log.Warn("isolated from the federation", "peers_blocked", len(iso.peers()))
	return iso, nil
}

// block makes the gater refuse p for the isolation, unless p was already
// blocked (for misbehaviour): that block is left as it was. It reports
// whether p is to be kept off (false once healed).
func (iso *Isolation) block(p peer.ID) bool {
	iso.mu.Lock()
	defer iso.mu.Unlock()
	if iso.healed {
		return false
	}
	if !iso.blocked[p] && !iso.n.gater.Blocked(p) {
		iso.n.gater.Block(p, isolationBlock)
		iso.blocked[p] = true
	}
	return true
}

func (iso *Isolation) isHealed() bool {
	iso.mu.Lock()
	defer iso.mu.Unlock()
	return iso.healed
}

func (iso *Isolation) peers() []peer.ID {
	iso.mu.Lock()
	defer iso.mu.Unlock()
	out := make([]peer.ID, 0, len(iso.blocked))
	for p := range iso.blocked {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// Heal ends the isolation: it lifts the blocks it set and dials every
// server it had blocked, so that the rooms' heads exchange starts at once
// (the servers' own dialers would also reconnect, after their backoff).
// It returns when every dial has succeeded or failed, with the failures
// joined; a second Heal does nothing.
func (iso *Isolation) Heal(ctx context.Context) error {
	iso.mu.Lock()
	if iso.healed {
		iso.mu.Unlock()
		return nil
	}
	iso.healed = true
	iso.mu.Unlock()
	n := iso.n
	if n.mesh == nil {
		return ErrNotRunning
	}
	h := n.mesh.Host()
	h.Network().StopNotify(iso.notifee)
	peers := iso.peers()
	for _, p := range peers {
		n.gater.Block(p, -time.Second) // an expired block is dropped on the next check
	}
	var errs []error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, p := range peers {
		if len(h.Peerstore().Addrs(p)) == 0 {
			continue // met inbound only: it dials us
		}
		wg.Go(func() {
			if err := iso.reconnect(ctx, p); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("reconnect %s: %w", p.ShortString(), err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	n.log.Warn("rejoined the federation", "peers", len(peers), "failed", len(errs))
	return errors.Join(errs...)
}

// reconnectAttempts bounds the dials of one peer in Heal.
const reconnectAttempts = 5

// reconnect dials p, first clearing the dial backoff the swarm recorded
// for the dials the gater refused during the isolation (without that, the
// swarm answers "dial backoff" for up to a minute). It retries a few
// times: the peer's own gater may still be settling.
func (iso *Isolation) reconnect(ctx context.Context, p peer.ID) error {
	h := iso.n.mesh.Host()
	var err error
	for i := range reconnectAttempts {
		if sw, ok := h.Network().(interface{ Backoff() *swarm.DialBackoff }); ok {
			sw.Backoff().Clear(p)
		}
		if err = h.Connect(ctx, peer.AddrInfo{ID: p}); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(time.Duration(i+1) * 100 * time.Millisecond):
		}
	}
	return err
}
