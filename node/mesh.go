package node

import (
	"context"
	"fmt"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/p2p"
)

// peerAddrInfo is p with the addresses the host knows for it.
func peerAddrInfo(m *p2p.Mesh, p peer.ID) peer.AddrInfo {
	return peer.AddrInfo{ID: p, Addrs: m.Host().Peerstore().Addrs(p)}
}

// startMesh starts the libp2p host and the mesh on it with the node's
// identity and configuration. The returned stop closes the mesh, then the
// host.
func (n *Node) startMesh() (func(context.Context) error, error) {
	var boot []peer.AddrInfo
	for _, a := range n.cfg.P2P.Bootstrap {
		ma, err := multiaddr.NewMultiaddr(a)
		if err != nil {
			return nil, fmt.Errorf("bootstrap %q: %w", a, err)
		}
		pi, err := peer.AddrInfoFromP2pAddr(ma)
		if err != nil {
			return nil, fmt.Errorf("bootstrap %q: %w", a, err)
		}
		boot = append(boot, *pi)
	}
	var h host.Host
	var gater *p2p.Gater
	var err error
	if n.newHost != nil {
		h, err = n.newHost(n.key)
	} else {
		h, gater, err = p2p.NewHost(p2p.HostConfig{Key: n.key, ListenAddrs: n.cfg.P2P.Listen, Registerer: n.metrics.Registry})
	}
	if err != nil {
		return nil, err
	}
	mesh, err := p2p.New(p2p.Config{
		Host:        h,
		Gater:       gater,
		Store:       n.store,
		ACL:         n.rooms,
		KeyPackages: n.accounts,
		Logger:      n.log,
		OnEvent: func(room dag.RoomID, _ dag.EventID) {
			n.metrics.EventsStored.WithLabelValues("peer").Inc()
			n.rooms.pokeRoom(room)
		},
		OnInvite:      n.joins.viaInvite,
		Bootstrap:     boot,
		MDNS:          n.cfg.P2P.MDNS,
		HeadsInterval: n.headsInterval,
	})
	if err != nil {
		h.Close()
		return nil, err
	}
	n.mesh = mesh
	n.gater = gater
	n.rooms.mesh = mesh
	refused := rejectionsCollector{mesh}
	if err := n.metrics.Registry.Register(refused); err != nil {
		mesh.Close()
		h.Close()
		return nil, fmt.Errorf("register p2p metrics: %w", err)
	}
	notifee := &network.NotifyBundle{
		ConnectedF:    func(net network.Network, _ network.Conn) { n.metrics.Peers.Set(float64(len(net.Peers()))) },
		DisconnectedF: func(net network.Network, _ network.Conn) { n.metrics.Peers.Set(float64(len(net.Peers()))) },
	}
	h.Network().Notify(notifee)
	for _, room := range n.rooms.list() {
		if err := mesh.JoinRoom(room); err != nil {
			mesh.Close()
			h.Close()
			return nil, err
		}
	}
	n.log.Info("p2p", "peer_id", h.ID().String(), "addrs", fmt.Sprint(h.Addrs()))
	return func(context.Context) error {
		n.metrics.Registry.Unregister(refused)
		h.Network().StopNotify(notifee)
		err := mesh.Close()
		if cerr := h.Close(); err == nil {
			err = cerr
		}
		return err
	}, nil
}

// refusedDesc is the series of the events peers sent that the mesh refused
// before storing or relaying them (p2p.Mesh.Rejections).
var refusedDesc = prometheus.NewDesc("rhizome_p2p_events_refused_total",
	"Room events from peers refused before they were stored or relayed, by reason.", []string{"reason"}, nil)

// rejectionsCollector exports a mesh's rejection counts.
type rejectionsCollector struct{ m *p2p.Mesh }

// Describe implements prometheus.Collector.
func (c rejectionsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- refusedDesc }

// Collect implements prometheus.Collector: every reason, zero included.
func (c rejectionsCollector) Collect(ch chan<- prometheus.Metric) {
	counts := c.m.Rejections()
	for _, r := range p2p.RejectionReasons() {
		ch <- prometheus.MustNewConstMetric(refusedDesc, prometheus.CounterValue, float64(counts[r]), r.String())
	}
}
