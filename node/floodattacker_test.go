package node_test

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/p2p"
	"github.com/rhizome-chat/rhizome/p2p/p2ptest"
)

// The attacker of TestFloodAcceptance runs in a process of its own (this
// test binary, re-executed with floodAttackerEnv naming its order file), so
// that its memory is not counted in the nodes' RSS and its goroutines do
// not share the nodes' scheduler: as in the attack the issue reports, it
// is another program on the same machine.

// floodAttackerEnv names the order file of the attacker process.
const floodAttackerEnv = "RHIZOME_FLOOD_ATTACKER"

// floodKey is the attacker's identity key; both processes derive it.
func floodKey() ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("rhizome flood attacker"))
	return ed25519.NewKeyFromSeed(seed[:])
}

// floodOrder is what the test asks of the attacker process.
type floodOrder struct {
	Room     string        `json:"room"`
	Peers    []string      `json:"peers"` // the nodes' multiaddrs with /p2p/
	Events   int           `json:"events"`
	Duration time.Duration `json:"duration"`
	Chain    int           `json:"chain"`
	Result   string        `json:"result"` // where to write the floodResult
}

// floodResult is what the attacker process reports.
type floodResult struct {
	Flooded []dag.EventID        `json:"flooded"` // written to at least one stream
	Chain   []dag.EventID        `json:"chain"`
	Stats   p2ptest.HostileStats `json:"stats"`
	Took    time.Duration        `json:"took"`
	// Checks counts the attacker's connection checks (one per node every
	// 500 ms) and Disconnected, per node, those that found it disconnected
	// (it then redials; a dial a blocking node refuses after the handshake
	// may still look successful from this side, so only the next check
	// tells).
	Checks       int    `json:"checks"`
	Disconnected []int  `json:"disconnected"`
	SyncTried    int    `json:"sync_tried"`
	SyncOK       int    `json:"sync_ok"`
	Err          string `json:"err,omitempty"`
}

// floodReady is the line the attacker prints when its flood starts.
const floodReady = "flood: started"

// TestFloodAttackerProcess is the attacker process of TestFloodAcceptance;
// without floodAttackerEnv it is skipped.
func TestFloodAttackerProcess(t *testing.T) {
	path := os.Getenv(floodAttackerEnv)
	if path == "" {
		t.Skip("not a test of its own: the attacker process of TestFloodAcceptance, which starts it with " + floodAttackerEnv + " set")
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var o floodOrder
	if err := json.Unmarshal(raw, &o); err != nil {
		t.Fatal(err)
	}
	res, err := attack(o)
	if err != nil {
		res.Err = err.Error()
	}
	out, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(o.Result, out, 0o600); err != nil {
		t.Fatal(err)
	}
}

// attack carries out the order: it connects to every node (and keeps
// reconnecting), asks for the room over sync every 200 ms, serves a fake
// chain and gossips its tip, then floods.
func attack(o floodOrder) (floodResult, error) {
	var res floodResult
	room, err := dag.ParseRoomID(o.Room)
	if err != nil {
		return res, err
	}
	var infos []peer.AddrInfo
	for _, a := range o.Peers {
		ma, err := multiaddr.NewMultiaddr(a)
		if err != nil {
			return res, err
		}
		pi, err := peer.AddrInfoFromP2pAddr(ma)
		if err != nil {
			return res, err
		}
		infos = append(infos, *pi)
	}
	key := floodKey()
	h, _, err := p2p.NewHost(p2p.HostConfig{Key: key})
	if err != nil {
		return res, err
	}
	defer h.Close()
	x, err := p2ptest.NewHostile(h, key)
	if err != nil {
		return res, err
	}
	defer x.Close()
	chain, err := x.FakeChain(room, []dag.EventID{room.CreateID()}, o.Chain)
	if err != nil {
		return res, err
	}
	for _, ev := range chain {
		res.Chain = append(res.Chain, ev.ID())
	}
	x.ServeChain(chain)
	ctx := context.Background()
	for _, pi := range infos {
		if err := x.Connect(ctx, pi); err != nil {
			return res, err
		}
	}
	time.Sleep(time.Second) // identify, hellos

	res.Disconnected = make([]int, len(infos))
	floodCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { // keep (re)connecting, as a persistent attacker does
		for floodCtx.Err() == nil {
			res.Checks++
			for i, pi := range infos {
				if h.Network().Connectedness(pi.ID) == network.Connected {
					continue
				}
				res.Disconnected[i]++
				cctx, cancel := context.WithTimeout(floodCtx, time.Second)
				_ = x.Connect(cctx, pi)
				cancel()
			}
			time.Sleep(500 * time.Millisecond)
		}
	})
	wg.Go(func() { // ask for the room over sync
		for floodCtx.Err() == nil {
			for _, pi := range infos {
				sctx, cancel := context.WithTimeout(floodCtx, time.Second)
				resp, err := x.Sync(sctx, pi.ID, &p2p.SyncRequest{Kind: p2p.SyncHeads, Room: room})
				cancel()
				res.SyncTried++
				if err == nil && resp.Status == p2p.StatusOK {
					res.SyncOK++
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
	fmt.Println(floodReady)
	start := time.Now()
	_, _ = x.Publish(chain[len(chain)-1]) // only the fake chain's tip
	res.Flooded, err = x.Flood(floodCtx, room, p2ptest.FloodOptions{
		Count: o.Events, Rate: float64(o.Events) / o.Duration.Seconds(), Parents: []dag.EventID{room.CreateID()}, Size: 200,
	})
	res.Took = time.Since(start)
	stop()
	wg.Wait()
	time.Sleep(time.Second) // pulls the nodes might still send
	res.Stats = x.Stats()
	return res, err
}

// floodAttacker is a running attacker process.
type floodAttacker struct {
	cmd    *exec.Cmd
	result string
	ready  chan struct{}
	done   chan error
	log    strings.Builder
}

// startAttacker runs the attacker process with order o and returns once its
// flood has started.
func startAttacker(t *testing.T, o floodOrder) *floodAttacker {
	t.Helper()
	dir := t.TempDir()
	o.Result = filepath.Join(dir, "result.json")
	raw, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	order := filepath.Join(dir, "order.json")
	if err := os.WriteFile(order, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFloodAttackerProcess$", "-test.count=1", "-test.timeout=10m")
	cmd.Env = append(os.Environ(), floodAttackerEnv+"="+order)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	a := &floodAttacker{cmd: cmd, result: o.Result, ready: make(chan struct{}), done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(out)
		signalled := false
		for sc.Scan() {
			if sc.Text() == floodReady && !signalled {
				close(a.ready)
				signalled = true
				continue
			}
			a.log.WriteString(sc.Text() + "\n")
		}
		if !signalled {
			close(a.ready)
		}
		a.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	})
	select {
	case <-a.ready:
	case <-time.After(60 * time.Second):
		t.Fatal("the attacker process did not start its flood within 60 s")
	}
	return a
}

// wait waits for the attacker process to end and returns its report.
func (a *floodAttacker) wait(t *testing.T) floodResult {
	t.Helper()
	var err error
	select {
	case err = <-a.done:
	case <-time.After(5 * time.Minute):
		err = errors.New("timed out")
	}
	if err != nil {
		t.Fatalf("attacker process: %v\n%s", err, a.log.String())
	}
	raw, err := os.ReadFile(a.result)
	if err != nil {
		t.Fatalf("attacker result: %v\n%s", err, a.log.String())
	}
	var res floodResult
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatal(err)
	}
	if res.Err != "" && !strings.Contains(res.Err, "context canceled") {
		t.Errorf("attacker: %s", res.Err)
	}
	return res
}
