package badgerstore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/dag/dagtest"
)

// Environment of the child process in TestKillDuringIngest.
const (
	envKillDir  = "RHIZOME_DAG_KILL_DIR"
	envKillSeed = "RHIZOME_DAG_KILL_SEED"
	envKillRun  = "RHIZOME_DAG_KILL_ROUND"
)

const (
	killRooms        = 3
	killEventsInRoom = 700
	killContentSize  = 512
	killRounds       = 20
	killProducers    = 8
	killJournalBytes = 512 << 10 // the child checkpoints every ~900 events
)

// killEvents derives the rooms a round brings from seed; parent and child
// derive the same events. Round r puts its own rooms and round r-1's again,
// so every round is heavy ingest of new events, and it completes (with
// duplicates and releases of events left pending) the rooms the previous
// kill cut short.
func killEvents(seed uint64, round int) ([][]*dag.Event, error) {
	rng := rand.New(rand.NewPCG(seed, 42+uint64(round)))
	var rooms [][]*dag.Event
	for r := range killRooms {
		keys := []ed25519Key{dagtest.Key(byte(40 + r)), dagtest.Key(byte(50 + r)), dagtest.Key(byte(60 + r))}
		events, err := dagtest.RandomDAG(rng, killEventsInRoom, killContentSize, keys)
		if err != nil {
			return nil, err
		}
		rooms = append(rooms, events)
	}
	return rooms, nil
}

// killRoundRooms returns the rooms round puts: the previous round's, then
// its own.
func killRoundRooms(seed uint64, round int) ([][]*dag.Event, error) {
	var rooms [][]*dag.Event
	for r := max(1, round-1); r <= round; r++ {
		rs, err := killEvents(seed, r)
		if err != nil {
			return nil, err
		}
		rooms = append(rooms, rs...)
	}
	return rooms, nil
}

// killLimits leave room for every event pending at once: an origin key
// signs in one room per round, and a room that two kills in a row cut short
// keeps its pending events (round r+1 re-puts round r's rooms, round r+2 no
// longer does), so pending events of one origin can pile up over all the
// rounds (seed 1796698735611062999 reached 4,200 in round 21).
var killLimits = dag.Limits{PendingPerRoom: killEventsInRoom, PendingPerOrigin: (killRounds + 2) * killEventsInRoom}

// TestMain runs the ingest child when the kill test re-executes the binary.
func TestMain(m *testing.M) {
	if dir := os.Getenv(envKillDir); dir != "" {
		if err := killChild(dir); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(3)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// killChild ingests every event in an order drawn from the seed and round,
// with parallel producers (half with Put, half with PutAll), and prints
// "ack <room> <index> <status>" after each Put or PutAll returned. The
// parent kills it at a random moment.
func killChild(dir string) error {
	seed, err := strconv.ParseUint(os.Getenv(envKillSeed), 10, 64)
	if err != nil {
		return err
	}
	round, err := strconv.ParseUint(os.Getenv(envKillRun), 10, 64)
	if err != nil {
		return err
	}
	rooms, err := killRoundRooms(seed, int(round))
	if err != nil {
		return err
	}
	s, err := Open(dir, Options{Limits: killLimits, CacheMiB: 16, journalBytes: killJournalBytes})
	if err != nil {
		return err
	}
	type job struct{ room, idx int }
	var jobs []job
	for r, events := range rooms {
		if _, err := s.Put(events[0]); err != nil {
			return err
		}
		fmt.Printf("ack %d 0 stored\n", r)
		for i := 1; i < len(events); i++ {
			jobs = append(jobs, job{r, i})
		}
	}
	rng := rand.New(rand.NewPCG(seed, round))
	rng.Shuffle(len(jobs), func(i, j int) { jobs[i], jobs[j] = jobs[j], jobs[i] })
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	errs := make(chan error, killProducers)
	ack := func(js []job, res []dag.PutResult) error {
		mu.Lock()
		defer mu.Unlock()
		for i, j := range js {
			fmt.Fprintf(out, "ack %d %d %s\n", j.room, j.idx, res[i].Status)
		}
		return out.Flush() // the acks are visible to the parent only after Put returned
	}
	for p := range killProducers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []job
			for i := p; i < len(jobs); i += killProducers {
				mine = append(mine, jobs[i])
			}
			// Even producers Put one event at a time (the gossip path), odd
			// ones PutAll up to 16 (the sync path).
			chunk := 1 + 15*(p%2)
			for len(mine) > 0 {
				js := mine[:min(chunk, len(mine))]
				mine = mine[len(js):]
				evs := make([]*dag.Event, len(js))
				for i, j := range js {
					evs[i] = rooms[j.room][j.idx]
				}
				var res []dag.PutResult
				var err error
				if chunk == 1 {
					var r dag.PutResult
					r, err = s.Put(evs[0])
					res = []dag.PutResult{r}
				} else {
					var errs []error
					res, errs = s.PutAll(evs)
					err = errors.Join(errs...)
				}
				if err == nil {
					err = ack(js, res)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return err
	}
	if err := s.Close(); err != nil {
		return err
	}
	fmt.Println("done")
	return nil
}

// TestKillDuringIngest runs the store in a child process, SIGKILLs it during
// heavy ingest at random moments, reopens the store, and checks that every
// acknowledged event is there and that every index agrees with the events
// present (dagtest.Check against an oracle built from them).
func TestKillDuringIngest(t *testing.T) {
	seed := dagtest.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 99))
	dir := t.TempDir()
	start := time.Now()
	totalAcked, kills := 0, 0
	for round := 1; round <= killRounds+1; round++ {
		last := round == killRounds+1 // let the last child finish
		var delay time.Duration
		if !last {
			delay = time.Duration(rng.IntN(250)) * time.Millisecond
		}
		acked, finished := runKillChild(t, dir, seed, round, delay, last)
		if !finished {
			kills++
		}
		totalAcked += len(acked)
		rooms, err := killRoundRooms(seed, round)
		if err != nil {
			t.Fatal(err)
		}

		s, err := Open(dir, Options{Limits: killLimits, CacheMiB: 16})
		if err != nil {
			t.Fatalf("round %d: reopen after kill: %v", round, err)
		}
		for r, events := range rooms {
			room := events[0].RoomID()
			pending, err := s.Pending(room)
			if err != nil {
				t.Fatal(err)
			}
			isPending := map[dag.EventID]bool{}
			for _, id := range pending {
				isPending[id] = true
			}
			var present []*dag.Event
			for _, e := range events {
				ok, err := s.Has(e.ID())
				if err != nil {
					t.Fatal(err)
				}
				if ok || isPending[e.ID()] {
					present = append(present, e)
				}
			}
			for _, a := range acked {
				if a.room != r {
					continue
				}
				id := events[a.idx].ID()
				stored, _ := s.Has(id)
				switch {
				case !stored && !isPending[id]:
					t.Fatalf("round %d (seed %d): acknowledged event %d/%d (%s) lost after SIGKILL", round, seed, r, a.idx, a.status)
				case a.status == "stored" && !stored:
					t.Fatalf("round %d: event %d/%d acknowledged as stored is only pending", round, r, a.idx)
				}
			}
			if len(present) > 0 {
				if err := dagtest.Check(s, room, dagtest.NewOracle(present)); err != nil {
					t.Fatalf("round %d (seed %d), room %d: indexes inconsistent after SIGKILL: %v", round, seed, r, err)
				}
			}
			if last && len(present) != len(events) {
				t.Fatalf("after a complete run, room %d has %d of %d events", r, len(present), len(events))
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d kills, %d acknowledged puts checked, %v", kills, totalAcked, time.Since(start).Round(time.Millisecond))
	if kills < killRounds/2 {
		t.Fatalf("only %d of %d children were killed before finishing: ingest too short to test crashes", kills, killRounds)
	}
}

type ack struct {
	room, idx int
	status    string
}

// runKillChild runs one child; unless wait is set it sends SIGKILL delay after
// the child's first acknowledgement. It returns the acknowledgements read and
// whether the child finished on its own.
func runKillChild(t *testing.T, dir string, seed uint64, round int, delay time.Duration, wait bool) ([]ack, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envKillDir+"="+dir, envKillSeed+"="+strconv.FormatUint(seed, 10), envKillRun+"="+strconv.Itoa(round))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acks []ack
	finished := false
	first := make(chan struct{})
	readDone := make(chan error, 1)
	go func() {
		rd := bufio.NewReader(stdout)
		once := sync.Once{}
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				// EOF; a final line without its newline was cut by the
				// kill and is not an acknowledgement.
				if err == io.EOF {
					err = nil
				}
				readDone <- err
				return
			}
			line = strings.TrimSuffix(line, "\n")
			if line == "done" {
				finished = true
				continue
			}
			f := strings.Fields(line)
			if len(f) != 4 || f[0] != "ack" {
				readDone <- fmt.Errorf("unexpected child output %q", line)
				return
			}
			r, err1 := strconv.Atoi(f[1])
			i, err2 := strconv.Atoi(f[2])
			if err1 != nil || err2 != nil {
				readDone <- fmt.Errorf("unexpected child output %q", line)
				return
			}
			acks = append(acks, ack{r, i, f[3]})
			once.Do(func() { close(first) })
		}
	}()
	if !wait {
		select {
		case <-first:
			time.Sleep(delay)
			_ = cmd.Process.Signal(syscall.SIGKILL)
		case err := <-readDone:
			t.Fatalf("round %d: child exited before its first ack: %v", round, err)
		}
	}
	if err := <-readDone; err != nil {
		t.Fatalf("round %d: reading child output: %v", round, err)
	}
	err = cmd.Wait()
	if wait && err != nil {
		t.Fatalf("round %d: child failed: %v", round, err)
	}
	if !wait && err == nil && !finished {
		t.Fatalf("round %d: child exited cleanly without finishing", round)
	}
	return acks, finished
}
