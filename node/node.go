package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"

	"github.com/rhizome-chat/rhizome/consensus"
	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/dag/badgerstore"
	"github.com/rhizome-chat/rhizome/node/accounts"
	"github.com/rhizome-chat/rhizome/node/feed"
	"github.com/rhizome-chat/rhizome/node/httpapi"
	"github.com/rhizome-chat/rhizome/node/internal/localdb"
	"github.com/rhizome-chat/rhizome/p2p"
)

// LocalDir is the folder inside the data folder that holds the node-local
// database; the DAG store is in EventsDir.
const (
	LocalDir  = "local"
	EventsDir = "events"
)

// ShutdownTimeout bounds a graceful shutdown; what has not stopped by then
// is closed hard.
const ShutdownTimeout = 15 * time.Second

// Node is one Rhizome server: its identity, storage, federation transport,
// ordering layer, client API and operations endpoints, wired together.
type Node struct {
	cfg     Config
	log     *slog.Logger
	metrics *Metrics
	lc      lifecycle

	key ed25519.PrivateKey

	store    *badgerstore.Store
	db       *localdb.DB // the node-local database: accounts and feed
	local    *feed.Feed
	accounts *accounts.Store
	rooms    *rooms
	mesh     *p2p.Mesh
	api      *httpapi.Server // the client API, while it runs
	joins    *joins          // verified, bounded joins and invite notices

	adminToken string // bearer token of the admin API (AdminTokenFile)

	addrMu  sync.Mutex // guards opsAddr and apiAddr: Run sets them while callers poll
	opsAddr string
	apiAddr string

	// headsInterval overrides the mesh's heads-exchange period (tests).
	headsInterval time.Duration
	// gater is the host's connection gater (tests cut links with it).
	gater *p2p.Gater
	// newHost, if set, makes the libp2p host instead of p2p.NewHost (tests
	// put nodes on a mocknet); its gater is the mesh's default.
	newHost func(key ed25519.PrivateKey) (host.Host, error)
	// tick is the consensus tick length and orderParams the ordering
	// parameters (DefaultTick and consensus.DefaultParams; tests shorten
	// them).
	tick        time.Duration
	orderParams consensus.Params
	// now is the node's clock (time.Now; tests set their own).
	now func() time.Time
}

// New prepares a node from a validated configuration and the options.
// Nothing is started and nothing is written until Start.
func New(cfg Config, log *slog.Logger, opts ...Option) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Node{cfg: cfg, log: log, metrics: NewMetrics(), tick: DefaultTick, orderParams: consensus.DefaultParams(), now: time.Now}
	n.lc.log = log
	if cfg.Ordering.TickMS > 0 {
		n.tick = time.Duration(cfg.Ordering.TickMS) * time.Millisecond
	}
	for _, o := range opts {
		o(n)
	}
	return n, nil
}

// Start brings the node up, component by component in dependency order:
// data folder and identity, the event store, the node-local database and
// the rooms rebuilt from them, the federation mesh, the ingest loop, the
// client API, then the operations endpoints. Stop runs in reverse, so the
// stores close last. On any failure it
// stops what it had started and returns the error.
func (n *Node) Start(ctx context.Context) error {
	if err := n.start(ctx); err != nil {
		stopCtx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
		defer cancel()
		return errors.Join(err, n.lc.stopAll(stopCtx))
	}
	n.lc.setReady(true)
	n.log.Info("node ready", "server", n.cfg.ServerName, "data_dir", n.cfg.DataDir)
	return nil
}

func (n *Node) start(_ context.Context) error {
	if err := os.MkdirAll(n.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data folder %s: %w", n.cfg.DataDir, err)
	}
	key, created, err := LoadOrCreateIdentity(n.cfg.DataDir)
	if err != nil {
		return err
	}
	n.key = key
	n.log.Info("identity", "created", created, "server_key", fmt.Sprintf("%x", key.Public()))
	if err := n.lc.start("store", func() (func(context.Context) error, error) {
		s, err := badgerstore.Open(filepath.Join(n.cfg.DataDir, EventsDir), badgerstore.Options{Logger: n.log.With("sys", "badger")})
		if err != nil {
			return nil, err
		}
		n.store = s
		return func(context.Context) error { return s.Close() }, nil
	}); err != nil {
		return err
	}
	if err := n.lc.start("local", func() (func(context.Context) error, error) {
		db, err := localdb.Open(filepath.Join(n.cfg.DataDir, LocalDir))
		if err != nil {
			return nil, err
		}
		f, err := feed.Open(db, n.log)
		if err != nil {
			db.Close()
			return nil, err
		}
		n.db, n.local = db, f
		return func(context.Context) error { return db.Close() }, nil
	}); err != nil {
		return err
	}
	n.rooms = newRooms(n.log, n.store, n.local, key, n.metrics)
	n.rooms.params, n.rooms.tick, n.rooms.now = n.orderParams, n.tick, n.now
	n.accounts = accounts.New(accounts.Config{
		DB: n.db, Domain: n.cfg.ServerName, RegMode: n.cfg.API.RegistrationMode(),
		Self: n.ServerID(), Rooms: n.rooms, Log: n.log, Registry: n.metrics.Registry, Now: n.now,
	})
	n.joins = newJoins(n)
	if err := n.rooms.load(); err != nil {
		return fmt.Errorf("rebuild rooms: %w", err)
	}
	if err := n.lc.start("mesh", n.startMesh); err != nil {
		return err
	}
	if err := n.lc.start("ingest", func() (func(context.Context) error, error) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		ticked := make(chan struct{})
		go func() {
			defer close(done)
			n.rooms.run(ctx)
		}()
		go func() {
			defer close(ticked)
			n.rooms.runTicker(ctx)
		}()
		return func(stopCtx context.Context) error {
			cancel()
			for _, ch := range []chan struct{}{done, ticked} {
				select {
				case <-ch:
				case <-stopCtx.Done():
					return stopCtx.Err()
				}
			}
			return nil
		}, nil
	}); err != nil {
		return err
	}
	if err := n.lc.start("joins", n.joins.start); err != nil {
		return err
	}
	if n.cfg.API.Listen != "" {
		if err := n.lc.start("api", func() (func(context.Context) error, error) {
			tok, err := loadOrCreateAdminToken(n.cfg.DataDir)
			if err != nil {
				return nil, err
			}
			n.adminToken = tok
			n.api = n.newAPI()
			addr, stop, err := httpapi.Serve(n.log, "api", n.cfg.API.Listen, n.api.Handler(), httpapi.APIOptions(n.cfg.API.Limits, n.metrics.APIConnsClosed))
			n.addrMu.Lock()
			n.apiAddr = addr
			n.addrMu.Unlock()
			if err != nil {
				return nil, err
			}
			if err := writeAPIAddr(n.cfg.DataDir, addr); err != nil {
				return nil, errors.Join(err, stop(context.Background()))
			}
			return func(ctx context.Context) error {
				n.api.CloseStreams() // long-lived streams end first, so Shutdown does not wait for them
				return stop(ctx)
			}, nil
		}); err != nil {
			return err
		}
	}
	if n.cfg.Metrics.Listen != "" {
		if err := n.lc.start("ops", func() (func(context.Context) error, error) {
			addr, stop, err := httpapi.Serve(n.log, "ops", n.cfg.Metrics.Listen, opsHandler(n.metrics, &n.lc), httpapi.OpsOptions(DefaultConfig().API.Limits))
			n.addrMu.Lock()
			n.opsAddr = addr
			n.addrMu.Unlock()
			return stop, err
		}); err != nil {
			return err
		}
	}
	return nil
}

// Stop shuts the node down in reverse start order within ctx.
func (n *Node) Stop(ctx context.Context) error { return n.lc.stopAll(ctx) }

// Run starts the node, serves until ctx is cancelled (SIGINT or SIGTERM in
// the daemon), then shuts down gracefully within ShutdownTimeout.
func (n *Node) Run(ctx context.Context) error {
	if err := n.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	n.log.Info("shutting down", "timeout", ShutdownTimeout)
	stopCtx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	return n.Stop(stopCtx)
}

// OpsAddr is the bound address of the operations endpoints (/metrics,
// /healthz, /readyz), or "" when disabled.
func (n *Node) OpsAddr() string {
	n.addrMu.Lock()
	defer n.addrMu.Unlock()
	return n.opsAddr
}

// APIAddr is the bound address of the client API, or "" when disabled.
func (n *Node) APIAddr() string {
	n.addrMu.Lock()
	defer n.addrMu.Unlock()
	return n.apiAddr
}

// ServerID is the node's identity as rooms name it.
func (n *Node) ServerID() dag.ServerID {
	id, _ := dag.ServerIDFromKey(n.ServerKey())
	return id
}

// PeerAddrs returns the node's libp2p addresses with its peer ID
// (".../p2p/<peer ID>"), the form other nodes put in p2p.bootstrap.
func (n *Node) PeerAddrs() []string {
	if n.mesh == nil {
		return nil
	}
	h := n.mesh.Host()
	var out []string
	for _, a := range h.Addrs() {
		out = append(out, a.String()+"/p2p/"+h.ID().String())
	}
	return out
}

// ServerKey is the node's Ed25519 public key: its identity in the federation.
func (n *Node) ServerKey() ed25519.PublicKey { return n.key.Public().(ed25519.PublicKey) }
