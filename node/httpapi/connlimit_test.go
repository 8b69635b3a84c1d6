package httpapi

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"
)

// openConns returns the number of connections l has open.
func openConns(l *connLimiter) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// TestConnectionLimit: per-address and total limits close connections over
// them; at the total limit a new connection evicts the one that has waited
// longest for its headers.
func TestConnectionLimit(t *testing.T) {
	type closed struct{ reason string }
	start := func(t *testing.T, max, perIP int, h http.Handler) (string, *connLimiter, chan closed) {
		inner, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ch := make(chan closed, 100)
		l := newConnLimiter(inner, max, perIP, func(r string) { ch <- closed{r} })
		l.limitLoopback = true
		srv := &http.Server{Handler: h, ConnState: l.connState, ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(l)
		t.Cleanup(func() { srv.Close() })
		return inner.Addr().String(), l, ch
	}
	dial := func(t *testing.T, addr string) net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// closedByServer reports whether the server closed c within 2 s.
	closedByServer := func(c net.Conn) bool {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err := c.Read(make([]byte, 1))
		var ne net.Error
		return err != nil && !(errors.As(err, &ne) && ne.Timeout())
	}
	waitOpen := func(t *testing.T, l *connLimiter, want int) {
		t.Helper()
		for deadline := time.Now().Add(2 * time.Second); openConns(l) != want; {
			if time.Now().After(deadline) {
				t.Fatalf("open connections %d, want %d", openConns(l), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) })

	t.Run("per address", func(t *testing.T) {
		addr, l, ch := start(t, 100, 2, ok)
		dial(t, addr)
		dial(t, addr)
		waitOpen(t, l, 2)
		if c := dial(t, addr); !closedByServer(c) {
			t.Fatal("third connection of one address stays open")
		}
		if r := <-ch; r.reason != ConnClosedPerIP {
			t.Fatalf("reason %q", r.reason)
		}
		waitOpen(t, l, 2)
	})
	t.Run("full of busy connections", func(t *testing.T) {
		release := make(chan struct{})
		busy := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { <-release })
		addr, l, ch := start(t, 2, 100, busy)
		defer close(release)
		for range 2 {
			fmt.Fprintf(dial(t, addr), "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		}
		for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			l.mu.Lock()
			waiting := l.waiting.Len()
			l.mu.Unlock()
			if waiting == 0 && openConns(l) == 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("requests did not become active")
			}
		}
		if c := dial(t, addr); !closedByServer(c) {
			t.Fatal("a connection over the limit stays open")
		}
		if r := <-ch; r.reason != ConnClosedFull {
			t.Fatalf("reason %q", r.reason)
		}
	})
	t.Run("slow headers are evicted", func(t *testing.T) {
		addr, l, ch := start(t, 3, 100, ok)
		var slow []net.Conn
		for range 3 {
			c := dial(t, addr)
			fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n") // never finished
			slow = append(slow, c)
			waitOpen(t, l, len(slow))
		}
		c := dial(t, addr)
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("honest request at the limit: %v %v", resp, err)
		}
		if r := <-ch; r.reason != ConnClosedEvicted {
			t.Fatalf("reason %q", r.reason)
		}
		if !closedByServer(slow[0]) {
			t.Fatal("the oldest slow connection was not evicted")
		}
		if openConns(l) > 3 {
			t.Fatalf("%d open, limit 3", openConns(l))
		}
	})
}
