package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/multiformats/go-multiaddr"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/node"
)

// stopTimeout bounds the shutdown of one server.
const stopTimeout = 15 * time.Second

// server is one node of the demo: its configuration (with the ports it
// bound, so a restart comes back on the same addresses) and the running node.
type server struct {
	name string // short name: alpha, beta, gamma
	cfg  node.Config
	log  *slog.Logger
	n    *node.Node
	iso  *node.Isolation
	id   dag.ServerID // identity, kept across restarts
}

// domain is the server's name as users' identities carry it.
func (s *server) domain() string { return s.cfg.ServerName }

// apiURL is the base URL of the server's client API.
func (s *server) apiURL() string { return "http://" + s.n.APIAddr() }

// newServer starts a node with its data under dir/servers/<name>: real
// badger, libp2p on loopback TCP with an ephemeral port, the API on an
// ephemeral loopback port, bootstrapped to the given peers.
func newServer(ctx context.Context, dir, name string, log *slog.Logger, bootstrap []string) (*server, error) {
	cfg := node.LoopbackConfig(filepath.Join(dir, "servers", name), name+".test", bootstrap...)
	cfg.Metrics.Listen = ""
	s := &server{name: name, cfg: cfg, log: log.With("server", name)}
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	s.id = s.n.ServerID()
	// Pin the bound ports, so that a restart keeps the addresses the
	// clients and the other servers know.
	s.cfg.API.Listen = s.n.APIAddr()
	tcp, err := tcpListen(s.n.PeerAddrs())
	if err != nil {
		_ = s.stop()
		return nil, fmt.Errorf("server %s: %w", name, err)
	}
	s.cfg.P2P.Listen = []string{tcp}
	return s, nil
}

// tcpListen returns the TCP listen multiaddr (without /p2p) among addrs.
func tcpListen(addrs []string) (string, error) {
	for _, a := range addrs {
		m, err := multiaddr.NewMultiaddr(a)
		if err != nil {
			continue
		}
		if _, err := m.ValueForProtocol(multiaddr.P_TCP); err != nil {
			continue
		}
		if i := strings.Index(a, "/p2p/"); i >= 0 {
			return a[:i], nil
		}
		return a, nil
	}
	return "", fmt.Errorf("no TCP address among %v", addrs)
}

func (s *server) start(ctx context.Context) error {
	n, err := node.New(s.cfg, s.log)
	if err != nil {
		return fmt.Errorf("server %s: %w", s.name, err)
	}
	if err := n.Start(ctx); err != nil {
		return fmt.Errorf("server %s: start: %w", s.name, err)
	}
	s.n = n
	return nil
}

// stop shuts the node down gracefully.
func (s *server) stop() error {
	if s.n == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	err := s.n.Stop(ctx)
	s.n, s.iso = nil, nil
	if err != nil {
		return fmt.Errorf("server %s: stop: %w", s.name, err)
	}
	return nil
}

// restart stops the node and starts a new one on the same data folder and
// addresses: every room must resume where it was.
func (s *server) restart(ctx context.Context) error {
	if err := s.stop(); err != nil {
		return err
	}
	var err error
	for range 50 { // the old listeners may take a moment to release the ports
		if err = s.start(ctx); err == nil || !strings.Contains(err.Error(), "address already in use") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	if got := s.n.ServerID(); got != s.id {
		return fmt.Errorf("server %s came back with identity %v, was %v", s.name, got, s.id)
	}
	return nil
}

// isolate cuts the server off the federation.
func (s *server) isolate() error {
	iso, err := s.n.Isolate()
	if err != nil {
		return fmt.Errorf("server %s: isolate: %w", s.name, err)
	}
	s.iso = iso
	return nil
}

// heal reconnects an isolated server.
func (s *server) heal(ctx context.Context) error {
	if s.iso == nil {
		return errors.New("demo: heal without isolation")
	}
	err := s.iso.Heal(ctx)
	s.iso = nil
	if err != nil {
		return fmt.Errorf("server %s: heal: %w", s.name, err)
	}
	return nil
}
