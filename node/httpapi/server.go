// Package httpapi is the node's client HTTP API (docs/api.md): the
// handlers, bearer-token authentication, the event stream, the admin API,
// the rate limits and the HTTP server hardening (connection limits,
// per-phase deadlines). It owns no room state: it reads accounts and the
// feed, and reaches the room driver through Rooms, the one interface the
// node implements for it.
package httpapi

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/node/accounts"
	"github.com/rhizome-chat/rhizome/node/feed"
	"github.com/rhizome-chat/rhizome/p2p"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// Rooms is the room driver as the handlers use it. Errors it returns are
// answered as they are when they are API errors or rejections by the room
// engine or the DAG, else as internal errors.
type Rooms interface {
	// State returns the room's current state (nil if not created yet) and
	// whether the room is joined.
	State(room dag.RoomID) (*roomstate.State, bool)
	// List returns the joined rooms in ID order.
	List() []dag.RoomID
	// ServersOfDomain returns the servers that rooms' states list for
	// domain.
	ServersOfDomain(domain string) []dag.ServerID
	// Summary returns a room's state and its arrival-log position
	// processed so far.
	Summary(room dag.RoomID) (*roomstate.State, uint64)
	// Order returns the room's published canonical order; false when the
	// room is unknown or not created yet.
	Order(room dag.RoomID) (Order, bool)
	// Submit builds, authorizes, signs and stores a local event of kind
	// with content in room (zero for a create event), and returns it once
	// it is durable, with its feed position (0 if processing is deferred).
	Submit(ctx context.Context, room dag.RoomID, kind dag.Kind, content []byte) (*dag.Event, uint64, error)
	// Join joins room for a local user through the servers in via.
	Join(ctx context.Context, user string, room dag.RoomID, via []dag.ServerID) error
	// Leave forgets a joined room; Purge forgets a room and deletes its
	// events.
	Leave(room dag.RoomID) error
	Purge(room dag.RoomID) error
}

// Order is a room's published canonical order.
type Order struct {
	Chain     []dag.EventID // canonical commits, oldest first
	Tip       dag.EventID   // the newest canonical commit, or the create event
	Certified dag.EventID   // the newest certified commit, or the create event
}

// Directory fetches KeyPackages from another server's directory (p2p.Mesh).
type Directory interface {
	FetchKeyPackages(ctx context.Context, p peer.ID, q p2p.KeyPackageRequest) (p2p.KeyMaterial, error)
}

// Events reads the DAG store.
type Events interface {
	Get(id dag.EventID) (*dag.Event, error)
	Tips(room dag.RoomID) ([]dag.EventID, error)
}

// Metrics are the API's Prometheus metrics, registered by the node.
type Metrics struct {
	ClientStreams  prometheus.Gauge       // open event streams
	APIRateLimited *prometheus.CounterVec // requests answered 429, by bucket
}

// Config configures a Server.
type Config struct {
	Log        *slog.Logger
	ServerName string       // the node's server_name
	ServerID   dag.ServerID // the node's identity
	// Peer returns the node's libp2p peer ID and addresses (GET
	// /v1/server); nil before the mesh runs.
	Peer       func() (id string, addrs []string)
	Accounts   *accounts.Store
	Feed       *feed.Feed
	Events     Events
	Rooms      Rooms
	Directory  Directory // nil: no remote directory
	Rate       RateLimits
	AdminToken string // bearer token of the admin API
	Metrics    Metrics
	// Now is the clock of rate limits and token expiry (time.Now if nil).
	Now func() time.Time
}

// Server is the client API of one node.
type Server struct {
	log         *slog.Logger
	serverName  string
	self        dag.ServerID
	peer        func() (string, []string)
	accounts    *accounts.Store
	feed        *feed.Feed
	events      Events
	rooms       Rooms
	directory   Directory
	adminToken  string
	streamsOpen prometheus.Gauge
	limits      *apiLimiter
	streams     *streamHub
	now         func() time.Time
}

// New returns the API of cfg.
func New(cfg Config) *Server {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{
		log: log, serverName: cfg.ServerName, self: cfg.ServerID, peer: cfg.Peer,
		accounts: cfg.Accounts, feed: cfg.Feed, events: cfg.Events, rooms: cfg.Rooms, directory: cfg.Directory,
		adminToken: cfg.AdminToken, streamsOpen: cfg.Metrics.ClientStreams,
		limits:  newAPILimiter(cfg.Rate, cfg.Metrics.APIRateLimited, now),
		streams: newStreamHub(), now: now,
	}
}

// Handler is the client API's HTTP handler.
func (s *Server) Handler() http.Handler { return s.apiHandler() }

// CloseStreams ends every open event stream, so that a graceful shutdown
// of the HTTP server does not wait for them.
func (s *Server) CloseStreams() { s.streams.closeAll() }

func parseServerID(v string) (dag.ServerID, error) {
	var id dag.ServerID
	b, err := hex.DecodeString(v)
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("node: server ID %q is not 64 hex digits", v)
	}
	copy(id[:], b)
	return id, nil
}
