package p2p

import (
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
)

// mdnsNotifee hands peers found on the LAN to the dialer. Only peers the
// gater and policy would admit are kept (Ed25519 identities).
type mdnsNotifee struct{ m *Mesh }

// HandlePeerFound implements mdns.Notifee.
func (n mdnsNotifee) HandlePeerFound(pi peer.AddrInfo) {
	if _, err := ServerKey(pi.ID); err != nil {
		return
	}
	n.m.log.Debug("mDNS found peer", "peer", pi.ID.ShortString(), "addrs", pi.Addrs)
	n.m.dial.want(pi)
}

// startMDNS announces the host on the LAN and listens for other Rhizome
// servers under cfg.MDNSService. The service stops when the mesh closes.
func (m *Mesh) startMDNS() error {
	svc := mdns.NewMdnsService(m.h, m.cfg.MDNSService, mdnsNotifee{m})
	if err := svc.Start(); err != nil {
		return fmt.Errorf("p2p: start mDNS: %w", err)
	}
	m.goFunc(func() {
		<-m.ctx.Done()
		_ = svc.Close()
	})
	return nil
}
