package node_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rhizome-chat/rhizome/node"
	"github.com/rhizome-chat/rhizome/node/httpapi"
	"github.com/rhizome-chat/rhizome/node/nodetest"
)

// The slowloris attack runs in child processes (this test binary run again),
// so that its 20,000 sockets do not count against the server's file
// descriptor limit: `ulimit -n` is 20,000 here and cannot be raised.
const (
	envSlowAddr  = "RHIZOME_SLOWLORIS_ADDR"  // the API to attack
	envSlowConns = "RHIZOME_SLOWLORIS_CONNS" // connections this child holds
	envSlowNet   = "RHIZOME_SLOWLORIS_NET"   // second octet of its 127.x.y.z source addresses
	envSlowFor   = "RHIZOME_SLOWLORIS_FOR"   // how long it holds them after all are open
)

// Attack size: 20,000 connections (the figure) in two children.
const (
	slowChildren      = 2
	slowConnsPerChild = 10_000
	slowHold          = 6 * time.Second // longer than the 5 s header timeout
)

// TestSlowloris holds 20,000 connections that send their headers a line per
// second and never finish them, reconnecting whenever the server closes
// one, while an honest device sends requests on fresh connections. Every
// honest request must be answered within 1 s, and the server's file
// descriptors stay bounded by api.limits.max_conns.
func TestSlowloris(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options{})
	alice := nodetest.Register(t, n, "alice", "phone")
	baseFDs := countFDs()
	if baseFDs < 0 {
		t.Fatal("cannot count file descriptors: the test measures them through Linux's /proc/self/fd")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	type childReport struct {
		ready, opened, redials, failed int
	}
	reports := make([]childReport, slowChildren)
	var ready sync.WaitGroup
	var children sync.WaitGroup
	started := time.Now()
	for i := range slowChildren {
		ready.Add(1)
		children.Add(1)
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestSlowlorisChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), envSlowAddr+"="+n.APIAddr(), envSlowConns+"="+strconv.Itoa(slowConnsPerChild),
			envSlowNet+"="+strconv.Itoa(10+i), envSlowFor+"="+slowHold.String())
		cmd.Stderr = os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// A remote attacker does not take the server's CPU; on this shared
		// machine the children would, so they run at the lowest priority
		// (every thread: the child leads its own process group).
		_ = syscall.Setpriority(syscall.PRIO_PGRP, cmd.Process.Pid, 19)
		go func() {
			defer children.Done()
			sc := bufio.NewScanner(out)
			signalled := false
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				if len(f) == 5 && (f[0] == "ready" || f[0] == "done") {
					r := &reports[i]
					r.opened, _ = strconv.Atoi(f[1])
					r.redials, _ = strconv.Atoi(f[2])
					r.failed, _ = strconv.Atoi(f[3])
					if f[0] == "ready" {
						r.ready, _ = strconv.Atoi(f[4])
						if !signalled {
							signalled = true
							ready.Done()
						}
					}
				}
			}
			if !signalled {
				ready.Done()
			}
			cmd.Wait()
		}()
	}

	// The honest device: one request every 100 ms on a fresh connection,
	// from the start of the attack to its end.
	var lat []time.Duration
	var failures []string
	var maxFDs atomic.Int64
	stop := make(chan struct{})
	probed := make(chan struct{})
	go func() {
		defer close(probed)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			t0 := time.Now()
			c, err := net.DialTimeout("tcp", n.APIAddr(), 5*time.Second)
			if err != nil {
				failures = append(failures, err.Error())
				continue
			}
			c.SetDeadline(time.Now().Add(5 * time.Second))
			fmt.Fprintf(c, "GET /v1/whoami HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n", alice.Token)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			d := time.Since(t0)
			c.Close()
			if err != nil {
				failures = append(failures, err.Error())
			} else {
				if resp.StatusCode != 200 {
					failures = append(failures, resp.Status)
				}
				lat = append(lat, d)
			}
			if fds := int64(countFDs()); fds > maxFDs.Load() {
				maxFDs.Store(fds)
			}
		}
	}()
	ready.Wait()
	openedAt := time.Since(started)
	children.Wait()
	close(stop)
	<-probed

	total := childReport{}
	for _, r := range reports {
		total.ready += r.ready
		total.opened += r.opened
		total.redials += r.redials
		total.failed += r.failed
	}
	slices.Sort(lat)
	var p50, maxLat time.Duration
	if len(lat) > 0 {
		p50, maxLat = lat[len(lat)/2], lat[len(lat)-1]
	}
	evicted := counterValue(t, n.Metrics().APIConnsClosed, httpapi.ConnClosedEvicted)
	t.Logf("slowloris: the attackers opened %d connections within %v, then kept every one reconnecting for %v: %d connections, %d reconnects and %d failed dials in all; "+
		"the server evicted %v and held at most %d fds (%d before); honest requests on fresh connections: %d answered, p50 %v, max %v, %d failed",
		total.ready, openedAt.Round(time.Millisecond), slowHold, total.opened, total.redials, total.failed,
		evicted, maxFDs.Load(), baseFDs, len(lat), p50, maxLat, len(failures))
	if total.ready < slowChildren*slowConnsPerChild*9/10 {
		t.Fatalf("the children held only %d connections at once, want about %d", total.ready, slowChildren*slowConnsPerChild)
	}
	if len(failures) > 0 {
		t.Fatalf("%d honest requests failed, e.g. %s", len(failures), failures[0])
	}
	if len(lat) < 20 || maxLat > time.Second {
		t.Fatalf("honest requests: %d answered, slowest %v; want all within 1 s", len(lat), maxLat)
	}
	if limit := int64(baseFDs + node.DefaultConfig().API.Limits.MaxConns + 64); maxFDs.Load() > limit {
		t.Fatalf("the server held %d fds, more than max_conns allows (%d)", maxFDs.Load(), limit)
	}
}

// TestSlowlorisChild is the attacking child of TestSlowloris; it does nothing
// unless run by it. It opens its connections, prints "ready opened redials
// failed open", holds them for the set time, reconnecting each one the
// server closes, and prints "done ..." the same way.
func TestSlowlorisChild(t *testing.T) {
	addr := os.Getenv(envSlowAddr)
	if addr == "" {
		t.Skip("not a test of its own: the attacking child process of TestSlowloris, which starts it with " + envSlowAddr + " set")
	}
	conns, _ := strconv.Atoi(os.Getenv(envSlowConns))
	octet, _ := strconv.Atoi(os.Getenv(envSlowNet))
	hold, _ := time.ParseDuration(os.Getenv(envSlowFor))
	var opened, redials, failed, open atomic.Int64
	var initial sync.WaitGroup
	var readyAt time.Time
	ready := make(chan struct{}) // closed once readyAt is set
	var wg sync.WaitGroup
	dial := func(i int) net.Conn {
		d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, byte(octet), byte(i/200%250), byte(2+i%200))}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			failed.Add(1)
			return nil
		}
		opened.Add(1)
		c.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := fmt.Fprintf(c, "GET /v1/whoami HTTP/1.1\r\nHost: %s\r\n", addr); err != nil {
			c.Close()
			return nil
		}
		return c
	}
	for i := range conns {
		initial.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := dial(i)
			if c != nil {
				open.Add(1)
			}
			initial.Done()
			<-ready
			end := readyAt.Add(hold)
			time.Sleep(time.Duration(i) * time.Second / time.Duration(conns)) // spread the writes over each second
			for time.Now().Before(end) {
				time.Sleep(time.Second)
				if c != nil {
					c.SetWriteDeadline(time.Now().Add(time.Second))
					if _, err := fmt.Fprintf(c, "X-Slow-%d: 1\r\n", i); err == nil {
						continue
					}
					c.Close()
					open.Add(-1)
				}
				redials.Add(1)
				if c = dial(i); c != nil {
					open.Add(1)
				}
			}
			if c != nil {
				c.Close()
			}
		}()
	}
	initial.Wait()
	fmt.Printf("ready %d %d %d %d\n", opened.Load(), redials.Load(), failed.Load(), open.Load())
	readyAt = time.Now()
	close(ready)
	wg.Wait()
	fmt.Printf("done %d %d %d %d\n", opened.Load(), redials.Load(), failed.Load(), open.Load())
}

// countFDs is the number of open file descriptors of this process, or -1
// if it cannot tell.
func countFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}
