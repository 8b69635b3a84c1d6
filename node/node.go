package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"
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

	opsAddr string
}

// New prepares a node from a validated configuration. Nothing is started and
// nothing is written until Start.
func New(cfg Config, log *slog.Logger) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Node{cfg: cfg, log: log, metrics: NewMetrics()}
	n.lc.log = log
	return n, nil
}

// Start brings the node up, component by component in dependency order:
// data folder and identity, then the operations endpoints. On any failure it
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
	if n.cfg.Metrics.Listen != "" {
		if err := n.lc.start("ops", func() (func(context.Context) error, error) {
			addr, stop, err := serveHTTP(n.log, "ops", n.cfg.Metrics.Listen, opsHandler(n.metrics, &n.lc))
			n.opsAddr = addr
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
func (n *Node) OpsAddr() string { return n.opsAddr }

// ServerKey is the node's Ed25519 public key: its identity in the federation.
func (n *Node) ServerKey() ed25519.PublicKey { return n.key.Public().(ed25519.PublicKey) }
