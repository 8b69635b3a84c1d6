package node

import (
	"context"
	"errors"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/node/httpapi"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// newAPI wires the client API to this node's accounts, feed, store and
// room driver.
func (n *Node) newAPI() *httpapi.Server {
	cfg := httpapi.Config{
		Log: n.log, ServerName: n.cfg.ServerName, ServerID: n.ServerID(),
		Peer: func() (string, []string) {
			if n.mesh == nil {
				return "", nil
			}
			return n.mesh.Host().ID().String(), n.PeerAddrs()
		},
		Accounts: n.accounts, Feed: n.local, Events: n.store, Rooms: apiRooms{n},
		Rate: n.cfg.API.Rate, AdminToken: n.adminToken,
		Metrics: httpapi.Metrics{ClientStreams: n.metrics.ClientStreams, APIRateLimited: n.metrics.APIRateLimited},
		Now:     n.now,
	}
	if n.mesh != nil {
		cfg.Directory = n.mesh
	}
	return httpapi.New(cfg)
}

// apiRooms is the room driver and the joins as the client API uses them
// (httpapi.Rooms).
type apiRooms struct{ n *Node }

func (a apiRooms) State(room dag.RoomID) (*roomstate.State, bool) { return a.n.rooms.state(room) }

func (a apiRooms) List() []dag.RoomID { return a.n.rooms.list() }

func (a apiRooms) ServersOfDomain(domain string) []dag.ServerID {
	return a.n.rooms.ServersOfDomain(domain)
}

func (a apiRooms) Summary(room dag.RoomID) (*roomstate.State, uint64) {
	return a.n.rooms.summary(room)
}

func (a apiRooms) Order(room dag.RoomID) (httpapi.Order, bool) {
	v, ok := a.n.rooms.order(room)
	if !ok {
		return httpapi.Order{}, false
	}
	return httpapi.Order{Chain: v.chain, Tip: v.tip(), Certified: v.certified()}, true
}

func (a apiRooms) Submit(ctx context.Context, room dag.RoomID, kind dag.Kind, content []byte) (*dag.Event, uint64, error) {
	return a.n.rooms.submit(ctx, room, kind, content)
}

func (a apiRooms) Join(ctx context.Context, user string, room dag.RoomID, via []dag.ServerID) error {
	err := a.n.joins.viaAPI(ctx, user, room, via)
	var je *joinError
	if errors.As(err, &je) {
		return je.apiError()
	}
	return err
}

func (a apiRooms) Leave(room dag.RoomID) error {
	if err := a.n.rooms.forget(room); err != nil {
		return err
	}
	a.n.joins.unreserve(room)
	return nil
}

func (a apiRooms) Purge(room dag.RoomID) error {
	if err := a.n.rooms.purge(room); err != nil {
		return err
	}
	a.n.joins.unreserve(room)
	return nil
}
