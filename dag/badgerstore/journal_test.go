package badgerstore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/dag/dagtest"
)

func TestParseRecords(t *testing.T) {
	a, b := []byte("first event"), bytes.Repeat([]byte{7}, 300)
	two := appendRecord(appendRecord(nil, a), b)
	badSum := bytes.Clone(two)
	badSum[len(two)-1] ^= 1
	for _, tc := range []struct {
		name  string
		in    []byte
		n     int  // payloads returned
		good  int  // offset of the end of the last good record
		clean bool // nothing after it
	}{
		{"empty", nil, 0, 0, true},
		{"two records", two, 2, len(two), true},
		{"torn header", two[:len(two)-len(b)-5], 1, recordHeader + len(a), false},
		{"torn payload", two[:len(two)-1], 1, recordHeader + len(a), false},
		{"bad checksum", badSum, 1, recordHeader + len(a), false},
		{"zero length", append(bytes.Clone(two), make([]byte, 12)...), 2, len(two), false},
		{"length over the cap", appendRecord(nil, make([]byte, maxRecord+1)), 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			payloads, good, clean := parseRecords(tc.in)
			if len(payloads) != tc.n || good != tc.good || clean != tc.clean {
				t.Fatalf("got %d payloads, good %d, clean %v; want %d, %d, %v", len(payloads), good, clean, tc.n, tc.good, tc.clean)
			}
			if tc.n > 0 && !bytes.Equal(payloads[0], a) {
				t.Fatalf("first payload %q", payloads[0])
			}
		})
	}
}

// FuzzParseRecords checks that parsing never panics and that what it
// accepts is exactly a sequence of records that re-encodes to the prefix.
func FuzzParseRecords(f *testing.F) {
	f.Add(appendRecord(appendRecord(nil, []byte("a")), []byte("bc")))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 'x'})
	f.Fuzz(func(t *testing.T, in []byte) {
		payloads, good, clean := parseRecords(in)
		var again []byte
		for _, p := range payloads {
			again = appendRecord(again, p)
		}
		if !bytes.Equal(again, in[:good]) {
			t.Fatal("accepted records do not re-encode to the accepted prefix")
		}
		if clean != (good == len(in)) {
			t.Fatalf("clean = %v with %d of %d bytes accepted", clean, good, len(in))
		}
	})
}

// copyDir copies the regular files of src into dst (created if needed),
// recursing into directories.
func copyDir(t *testing.T, src, dst string) { copyDirLimit(t, src, dst, nil) }

// copyDirLimit is copyDir, copying only the first limit[name] bytes of the
// files named in limit.
func copyDirLimit(t *testing.T, src, dst string, limit map[string]int64) {
	t.Helper()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			copyDirLimit(t, filepath.Join(src, e.Name()), filepath.Join(dst, e.Name()), limit)
			continue
		}
		in, err := os.Open(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.Create(filepath.Join(dst, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		var r io.Reader = in
		if n, ok := limit[e.Name()]; ok {
			r = io.LimitReader(in, n)
		} else if limit != nil && filepath.Ext(e.Name()) == vlogFileExt {
			// A value-log file started after the checkpoint keeps only its
			// header (badger/v4 value.go: vlogHeaderSize).
			r = io.LimitReader(in, 20)
		}
		if _, err := io.Copy(out, r); err != nil {
			t.Fatal(err)
		}
		in.Close()
		if err := out.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// liveStore stores first in a new store and closes it (a checkpoint: the
// journal is then empty), calls atCheckpoint with its directory, reopens it
// and acknowledges second one Put at a time, then calls beforeClose with
// its directory while it is still open, and closes it.
func liveStore(t *testing.T, first, second []*dag.Event, lim dag.Limits, atCheckpoint, beforeClose func(live string)) {
	t.Helper()
	live := t.TempDir()
	s, err := Open(live, Options{Limits: lim, CacheMiB: 16})
	if err != nil {
		t.Fatal(err)
	}
	if _, errs := s.PutAll(first); errors.Join(errs...) != nil {
		t.Fatal(errors.Join(errs...))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	atCheckpoint(live)
	if s, err = Open(live, Options{Limits: lim, CacheMiB: 16}); err != nil {
		t.Fatal(err)
	}
	for _, e := range second {
		if _, err := s.Put(e); err != nil {
			t.Fatal(err)
		}
	}
	beforeClose(live)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// lostBadgerWrites builds the state a power loss can leave: badger's files
// as of a checkpoint (after the first part of events was stored), and the
// journal of a store that went on to acknowledge the second part. It returns
// that directory.
func lostBadgerWrites(t *testing.T, first, second []*dag.Event, lim dag.Limits) string {
	t.Helper()
	lost := t.TempDir()
	liveStore(t, first, second, lim, func(live string) { copyDir(t, live, lost) }, func(live string) {
		// Every Put returned, so its event is in the journal; badger's
		// files in lost do not have them. Take the journal as it is now,
		// before Close checkpoints and truncates it.
		if err := os.RemoveAll(filepath.Join(lost, journalDir)); err != nil {
			t.Fatal(err)
		}
		copyDir(t, filepath.Join(live, journalDir), filepath.Join(lost, journalDir))
	})
	return lost
}

// TestJournalRecoversLostBadgerWrites is the power-loss case the journal
// exists for: badger lost everything since its last checkpoint, and Open
// rebuilds every acknowledged event, with consistent indexes, from the
// journal, including events released from pending after the checkpoint.
func TestJournalRecoversLostBadgerWrites(t *testing.T) {
	seed := dagtest.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 8))
	events, err := dagtest.RandomDAG(rng, 400, 256, []ed25519Key{dagtest.Key(1), dagtest.Key(2)})
	if err != nil {
		t.Fatal(err)
	}
	lim := dag.Limits{PendingPerRoom: len(events), PendingPerOrigin: len(events)}
	order := append([]*dag.Event{events[0]}, dagtest.Shuffle(rng, events[1:])...)
	first, second := order[:200], order[200:]
	lost := lostBadgerWrites(t, first, second, lim)

	// Before recovery the badger files alone lack the second part.
	segs, err := segments(filepath.Join(lost, journalDir))
	if err != nil || len(segs) == 0 {
		t.Fatalf("journal segments %v, %v", segs, err)
	}
	s, err := Open(lost, Options{Limits: lim, CacheMiB: 16})
	if err != nil {
		t.Fatal(err)
	}
	if err := dagtest.Check(s, events[0].RoomID(), dagtest.NewOracle(events)); err != nil {
		t.Fatalf("after replay: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Replay was checkpointed: the journal is empty and a reopen agrees.
	left, _, err := readJournal(filepath.Join(lost, journalDir))
	if err != nil || len(left) != 0 {
		t.Fatalf("%d events left in the journal after a clean close (%v)", len(left), err)
	}
	s, err = Open(lost, Options{Limits: lim, CacheMiB: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := dagtest.Check(s, events[0].RoomID(), dagtest.NewOracle(events)); err != nil {
		t.Fatalf("after reopen: %v", err)
	}
}

// TestJournalControl shows that the recovery test can fail: without the
// journal, the same badger files lack the acknowledged second part.
func TestJournalControl(t *testing.T) {
	f := dagtest.Build(t, "A -> B -> C -> D")
	lim := dag.Limits{PendingPerRoom: 10, PendingPerOrigin: 10}
	lost := lostBadgerWrites(t, []*dag.Event{f.E("A"), f.E("B")}, []*dag.Event{f.E("C"), f.E("D")}, lim)
	if err := os.RemoveAll(filepath.Join(lost, journalDir)); err != nil {
		t.Fatal(err)
	}
	s, err := Open(lost, Options{Limits: lim, CacheMiB: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if ok, _ := s.Has(f.ID("D")); ok {
		t.Fatal("D is stored without the journal: the recovery test would prove nothing")
	}
}

// journalFixture returns a store directory whose badger files hold A of
// "A -> B -> C -> D" and whose journal holds B and C (lostBadgerWrites), and
// the path of its last journal segment.
func journalFixture(t *testing.T) (f *dagtest.Fixture, lim dag.Limits, dir, last string) {
	t.Helper()
	f = dagtest.Build(t, "A -> B -> C -> D")
	lim = dag.Limits{PendingPerRoom: 10, PendingPerOrigin: 10}
	dir = lostBadgerWrites(t, []*dag.Event{f.E("A")}, []*dag.Event{f.E("B"), f.E("C")}, lim)
	jdir := filepath.Join(dir, journalDir)
	segs, err := segments(jdir)
	if err != nil || len(segs) == 0 {
		t.Fatalf("journal segments %v, %v", segs, err)
	}
	return f, lim, dir, filepath.Join(jdir, segmentName(segs[len(segs)-1]))
}

// appendBytes appends b to the file at path.
func appendBytes(t *testing.T, path string, b []byte) {
	t.Helper()
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := fh.Close(); err != nil {
		t.Fatal(err)
	}
}

// openFixture opens the journalFixture directory and checks that the room
// holds exactly A, B and C.
func openFixture(t *testing.T, f *dagtest.Fixture, lim dag.Limits, dir string) {
	t.Helper()
	s, err := Open(dir, Options{Limits: lim, CacheMiB: 16})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer s.Close()
	if err := dagtest.Check(s, f.Room, dagtest.NewOracle([]*dag.Event{f.E("A"), f.E("B"), f.E("C")})); err != nil {
		t.Fatal(err)
	}
}

// TestJournalTornTail: a record cut short at the end of the last segment was
// never acknowledged; Open ignores it and keeps everything before it.
func TestJournalTornTail(t *testing.T) {
	f, lim, lost, last := journalFixture(t)
	d := f.ID("D")
	torn := appendRecord(nil, key(tagPending, d[:]), f.E("D").Bytes())
	appendBytes(t, last, torn[:len(torn)/2])
	openFixture(t, f, lim, lost)
}

// TestJournalCorruptSegment: damage anywhere but the tail of the last
// segment is not a crash artefact; Open refuses with a clear error rather
// than silently dropping acknowledged events.
func TestJournalCorruptSegment(t *testing.T) {
	_, lim, lost, name := journalFixture(t)
	b, err := os.ReadFile(name)
	if err != nil || len(b) < 20 {
		t.Fatalf("segment of %d bytes: %v", len(b), err)
	}
	b[recordHeader+5] ^= 0xff // inside the first record
	if err := os.WriteFile(name, b, 0o600); err != nil {
		t.Fatal(err)
	}
	// A later segment makes the damaged one a middle segment.
	segs, err := segments(filepath.Dir(name))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(name), segmentName(segs[len(segs)-1]+1)), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Open(lost, Options{Limits: lim, CacheMiB: 16})
	if !errors.Is(err, errJournalCorrupt) {
		t.Fatalf("Open with a corrupt middle segment = %v, want errJournalCorrupt", err)
	}
}

// vlogSizes returns the sizes of the value-log files in dir.
func vlogSizes(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*"+vlogFileExt))
	if err != nil || len(names) == 0 {
		t.Fatalf("value-log files %v, %v", names, err)
	}
	sizes := map[string]int64{}
	for _, name := range names {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		sizes[filepath.Base(name)] = fi.Size()
	}
	return sizes
}

// lostValueLog builds the state a power loss can leave when badger's
// write-ahead log (or a table flushed from it) reached the disk but the
// value-log pages it points to did not: the files of a live store after it
// acknowledged second, with every value-log file cut back to its size at
// the checkpoint before second (a file started since to its header).
func lostValueLog(t *testing.T, first, second []*dag.Event, lim dag.Limits) string {
	t.Helper()
	lost := t.TempDir()
	var checkpointed map[string]int64
	liveStore(t, first, second, lim,
		func(live string) { checkpointed = vlogSizes(t, live) },
		func(live string) { copyDirLimit(t, live, lost, checkpointed) })
	return lost
}

// bigEvents returns a random DAG of events large enough for badger's value
// log.
func bigEvents(t *testing.T, seed uint64, n int) []*dag.Event {
	t.Helper()
	events, err := dagtest.RandomDAG(rand.New(rand.NewPCG(seed, 9)), n, 2*valueThreshold, []ed25519Key{dagtest.Key(1), dagtest.Key(2)})
	if err != nil {
		t.Fatal(err)
	}
	return events
}

// TestJournalRepairsLostValueLog: Open rewrites, from the journal, the
// event values whose value-log pages were lost, and the store is whole.
func TestJournalRepairsLostValueLog(t *testing.T) {
	seed := dagtest.Seed(t)
	events := bigEvents(t, seed, 300)
	lim := dag.Limits{PendingPerRoom: len(events), PendingPerOrigin: len(events)}
	rng := rand.New(rand.NewPCG(seed, 10))
	order := append([]*dag.Event{events[0]}, dagtest.Shuffle(rng, events[1:])...)
	lost := lostValueLog(t, order[:150], order[150:], lim)
	s, err := Open(lost, Options{Limits: lim, CacheMiB: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if st := s.Stats(); st.Repaired == 0 {
		t.Fatal("nothing repaired: the test did not lose value-log data")
	} else {
		t.Logf("%d event values repaired", st.Repaired)
	}
	if err := dagtest.Check(s, events[0].RoomID(), dagtest.NewOracle(events)); err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		got, err := s.Get(e.ID())
		if err != nil || !bytes.Equal(got.Bytes(), e.Bytes()) {
			t.Fatalf("Get %v after repair: %v", e.ID(), err)
		}
	}
}

// TestLostValueLogControl shows what the repair prevents: without the
// journal, events whose value-log pages were lost cannot be read.
func TestLostValueLogControl(t *testing.T) {
	events := bigEvents(t, 1, 40)
	lim := dag.Limits{PendingPerRoom: len(events), PendingPerOrigin: len(events)}
	lost := lostValueLog(t, events[:20], events[20:], lim)
	if err := os.RemoveAll(filepath.Join(lost, journalDir)); err != nil {
		t.Fatal(err)
	}
	s, err := Open(lost, Options{Limits: lim, CacheMiB: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Get(events[len(events)-1].ID()); err == nil {
		t.Fatal("the last event reads back without the journal: the repair test would prove nothing")
	}
}

// TestJournalRepairsLostLists: a waiter list of 40 IDs is a value of more
// than 1 KiB, kept in the value log; when a power loss cuts it, Open
// rebuilds it from the pending events, and the room (with its 40 tip keys,
// which hold no value and cannot be cut so) is whole.
func TestJournalRepairsLostLists(t *testing.T) {
	var spec strings.Builder
	spec.WriteString("A -> M")
	for i := 1; i <= 40; i++ {
		fmt.Fprintf(&spec, ", A -> B%d, M -> C%d", i, i)
	}
	f := dagtest.Build(t, spec.String())
	var first, second []*dag.Event
	first = append(first, f.E("A"))
	for i := 1; i <= 20; i++ {
		first = append(first, f.E(fmt.Sprint("B", i)))
	}
	for i := 21; i <= 40; i++ {
		second = append(second, f.E(fmt.Sprint("B", i)))
	}
	for i := 1; i <= 40; i++ {
		second = append(second, f.E(fmt.Sprint("C", i))) // pending: M is withheld
	}
	lim := dag.Limits{PendingPerRoom: 100, PendingPerOrigin: 100}
	lost := lostValueLog(t, first, second, lim)
	s, err := Open(lost, Options{Limits: lim, CacheMiB: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if st := s.Stats(); st.Repaired < 1 {
		t.Fatalf("%d values repaired, want the waiter list: the test did not lose it", st.Repaired)
	}
	delivered := append(append([]*dag.Event(nil), first...), second...)
	if err := dagtest.Check(s, f.Room, dagtest.NewOracle(delivered)); err != nil {
		t.Fatalf("after repair: %v", err)
	}
	r := dagtest.Put(t, s, f.E("M"))[0]
	if len(r.Released) != 40 {
		t.Fatalf("M released %d events, want 40", len(r.Released))
	}
	if err := dagtest.Check(s, f.Room, dagtest.NewOracle(f.Events)); err != nil {
		t.Fatalf("after M: %v", err)
	}
}

// TestJournalTornTailThenCrash: Open truncates a torn tail before it starts
// a new segment, so a crash between the two (the new segment exists, the
// old one is not deleted yet) leaves a journal the next Open reads.
func TestJournalTornTailThenCrash(t *testing.T) {
	f, lim, lost, last := journalFixture(t)
	appendBytes(t, last, []byte{0x40, 0, 0, 0, 1, 2, 3})
	// The first Open's reading of the journal, then the crash window: a
	// new, empty segment after the torn one.
	jdir := filepath.Dir(last)
	if _, _, err := readJournal(jdir); err != nil {
		t.Fatal(err)
	}
	segs, err := segments(jdir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(jdir, segmentName(segs[len(segs)-1]+1)), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	openFixture(t, f, lim, lost)
}

// TestJournalFailureStopsStore: when the journal cannot be written, the
// Puts waiting and every later one fail with an error that says to reopen,
// nothing is acknowledged, and reopening recovers every acknowledged event.
func TestJournalFailureStopsStore(t *testing.T) {
	f := dagtest.Build(t, "A -> B -> C -> D")
	dir := t.TempDir()
	lim := dag.Limits{PendingPerRoom: 10, PendingPerOrigin: 10}
	s, err := Open(dir, Options{Limits: lim, CacheMiB: 16})
	if err != nil {
		t.Fatal(err)
	}
	dagtest.Put(t, s, f.E("A"), f.E("B"))
	// The syncer owns the journal; with no Put in flight, closing its file
	// makes the next write fail as a full disk would.
	if err := s.journal.f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(f.E("C")); err == nil || !strings.Contains(err.Error(), "reopen") {
		t.Fatalf("Put with a failing journal = %v, want an error that says to reopen", err)
	}
	if _, err := s.Put(f.E("D")); err == nil || !strings.Contains(err.Error(), "reopen") {
		t.Fatalf("Put after the failure = %v, want the same error", err)
	}
	if _, errs := s.PutAll([]*dag.Event{f.E("D")}); errs[0] == nil {
		t.Fatal("PutAll after the failure succeeded")
	}
	if err := s.Close(); err == nil {
		t.Log("Close of a stopped store returned no error") // the journal file is already closed
	}
	s, err = Open(dir, Options{Limits: lim, CacheMiB: 16})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	for _, name := range []string{"A", "B"} {
		if ok, err := s.Has(f.ID(name)); err != nil || !ok {
			t.Fatalf("acknowledged %s missing after reopen (%v)", name, err)
		}
	}
	dagtest.Put(t, s, f.E("C"), f.E("D"))
	if err := dagtest.Check(s, f.Room, dagtest.NewOracle(f.Events)); err != nil {
		t.Fatal(err)
	}
}
