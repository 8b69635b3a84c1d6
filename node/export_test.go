package node

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/dag/badgerstore"
	"github.com/rhizome-chat/rhizome/node/accounts"
	"github.com/rhizome-chat/rhizome/node/feed"
	"github.com/rhizome-chat/rhizome/node/httpapi"
	"github.com/rhizome-chat/rhizome/node/internal/localdb"
	"github.com/rhizome-chat/rhizome/p2p"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// Exported for the tests of package node_test (the kit is nodetest).

const AdminTokenPrefix = adminTokenPrefix

const JoinPurged = joinPurged

const MaxAwaiting = maxAwaiting

const MaxAwaitingPerServer = maxAwaitingPerServer

const MaxJoinsInFlight = maxJoinsInFlight

const MaxVia = maxVia

func (x *Node) Accounts() *accounts.Store { return x.accounts }

func (x *Node) AdminToken() string { return x.adminToken }

func (x *Node) API() *httpapi.Server { return x.api }

func (x *Node) Config() *Config { return &x.cfg }

func (x *Node) DB() *localdb.DB { return x.db }

func (x *Node) Gater() *p2p.Gater { return x.gater }

func (x *Node) Joins() *joins { return x.joins }

func (x *Node) Key() ed25519.PrivateKey { return x.key }

func (x *Node) Local() *feed.Feed { return x.local }

func (x *Node) Mesh() *p2p.Mesh { return x.mesh }

func (x *Node) Metrics() *Metrics { return x.metrics }

func (x *Node) Rooms() *rooms { return x.rooms }

func (x *Node) Store() *badgerstore.Store { return x.store }

func (x *Node) Tick() time.Duration { return x.tick }

func (x *joinError) Status() int { return x.status }

func (x *joins) Slots() chan struct{} { return x.slots }

func (x *rooms) WriteMu() *sync.Mutex { return &x.writeMu }

type JoinError = joinError

var IsVote = isVote

var JoinUserBurst = joinUserRate.burst

var LoadOrCreateAdminToken = loadOrCreateAdminToken

func (x *Isolation) Peers() []peer.ID { return x.peers() }

func (x *joins) AwaitingCount() int { return x.awaitingCount() }

func (x *joins) Begin(p0 dag.RoomID) (<-chan struct{}, error) { return x.begin(p0) }

func (x *joins) End(p0 dag.RoomID) { x.end(p0) }

func (x *joins) Reserve(p0 dag.RoomID, p1 string, p2 dag.ServerID) error {
	return x.reserve(p0, p1, p2)
}

func (x *joins) Sweep(p0 time.Time) { x.sweep(p0) }

func (x *orderView) Certified() dag.EventID { return x.certified() }

func (x *rooms) FeedByRoom(p0 dag.RoomID) (map[dag.RoomID][]feed.Entry, error) {
	return x.feedByRoom(p0)
}

func (x *rooms) List() []dag.RoomID { return x.list() }

func (x *rooms) Order(p0 dag.RoomID) (orderView, bool) { return x.order(p0) }

func (x *rooms) PokeRoom(p0 dag.RoomID) { x.pokeRoom(p0) }

func (x *rooms) ReloadLocked(p0 dag.RoomID) { x.reloadLocked(p0) }

func (x *rooms) State(p0 dag.RoomID) (*roomstate.State, bool) { return x.state(p0) }

func (x *rooms) Submit(p0 context.Context, p1 dag.RoomID, p2 dag.Kind, p3 []byte) (*dag.Event, uint64, error) {
	return x.submit(p0, p1, p2, p3)
}

// StateAt is the room state of epoch per the room's engine.
func (x *rooms) StateAt(room dag.RoomID, epoch dag.EventID) (*roomstate.State, error) {
	x.writeMu.Lock()
	defer x.writeMu.Unlock()
	x.mu.RLock()
	info := x.m[room]
	x.mu.RUnlock()
	if info == nil || info.eng == nil {
		return nil, fmt.Errorf("room %v not loaded", room)
	}
	return info.eng.StateAt(epoch)
}
