package httpapi

import (
	"container/list"
	"net"
	"net/http"
	"net/netip"
	"sync"
)

// Reasons the connection limiter closes a connection (the reason label of
// rhizome_api_conns_closed_total).
const (
	ConnClosedPerIP   = "per_ip"  // the remote address has max_conns_per_ip open
	ConnClosedFull    = "full"    // max_conns open and all of them busy
	ConnClosedEvicted = "evicted" // made room: it waited longest for headers, or idled longest
)

// connLimiter is a net.Listener that keeps at most max connections open, and
// at most perIP per remote address (an IPv6 /64; loopback is exempt unless
// limitLoopback). When max are open, a new connection evicts the one that
// has waited longest without a request in progress: still sending its
// headers (a slowloris) or idle between keep-alive requests. Only if every
// connection is busy with a request is the new one closed. So holding
// connections open costs an attacker its own connections, not the
// service, and accept never waits: the kernel backlog keeps draining.
//
// The http.Server reports connection states through connState.
type connLimiter struct {
	net.Listener
	max, perIP    int
	limitLoopback bool
	onClosed      func(reason string)

	mu      sync.Mutex
	open    int
	byIP    map[netip.Addr]int
	waiting *list.List // of *limitedConn without a request in progress, oldest first
}

func newConnLimiter(inner net.Listener, max, perIP int, onClosed func(string)) *connLimiter {
	if onClosed == nil {
		onClosed = func(string) {}
	}
	return &connLimiter{Listener: inner, max: max, perIP: perIP, onClosed: onClosed, byIP: map[netip.Addr]int{}, waiting: list.New()}
}

// limitedConn is one accepted connection; closing it frees its place.
type limitedConn struct {
	net.Conn
	l  *connLimiter
	ip netip.Addr
	// released and elem are guarded by l.mu.
	released bool
	elem     *list.Element // in l.waiting, or nil
}

// ipKey is the address the per-address limit counts: IPv4 as is, IPv6 by its
// /64, which one subscriber typically holds whole.
func ipKey(addr net.Addr) netip.Addr {
	var a netip.Addr
	if ta, ok := addr.(*net.TCPAddr); ok {
		a = ta.AddrPort().Addr()
	} else if ap, err := netip.ParseAddrPort(addr.String()); err == nil {
		a = ap.Addr()
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		a = p.Addr()
	}
	return a
}

// Accept returns the next connection within the limits, closing those over
// them.
func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := ipKey(c.RemoteAddr())
		counted := l.limitLoopback || !ip.IsLoopback()
		l.mu.Lock()
		if counted && l.perIP > 0 && l.byIP[ip] >= l.perIP {
			l.mu.Unlock()
			c.Close()
			l.onClosed(ConnClosedPerIP)
			continue
		}
		var victim *limitedConn
		if l.open >= l.max {
			front := l.waiting.Front()
			if front == nil {
				l.mu.Unlock()
				c.Close()
				l.onClosed(ConnClosedFull)
				continue
			}
			victim = front.Value.(*limitedConn)
			l.releaseLocked(victim)
		}
		lc := &limitedConn{Conn: c, l: l, ip: ip}
		l.open++
		if counted {
			l.byIP[ip]++
		}
		lc.elem = l.waiting.PushBack(lc) // new: no request yet
		l.mu.Unlock()
		if victim != nil {
			victim.Conn.Close()
			l.onClosed(ConnClosedEvicted)
		}
		return lc, nil
	}
}

// releaseLocked frees lc's place, once; l.mu is held.
func (l *connLimiter) releaseLocked(lc *limitedConn) {
	if lc.released {
		return
	}
	lc.released = true
	l.open--
	if n, ok := l.byIP[lc.ip]; ok {
		if n <= 1 {
			delete(l.byIP, lc.ip)
		} else {
			l.byIP[lc.ip] = n - 1
		}
	}
	if lc.elem != nil {
		l.waiting.Remove(lc.elem)
		lc.elem = nil
	}
}

// Close frees the connection's place and closes it.
func (c *limitedConn) Close() error {
	c.l.mu.Lock()
	c.l.releaseLocked(c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// connState tracks which connections may be evicted: those that are new
// (headers not complete) or idle. A connection serving a request, or
// hijacked, is not evicted.
func (l *connLimiter) connState(c net.Conn, s http.ConnState) {
	lc, ok := c.(*limitedConn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if s == http.StateNew || lc.released {
		return // Accept queued it; a released one stays out
	}
	if lc.elem != nil {
		l.waiting.Remove(lc.elem)
		lc.elem = nil
	}
	if s == http.StateIdle {
		lc.elem = l.waiting.PushBack(lc)
	}
}
