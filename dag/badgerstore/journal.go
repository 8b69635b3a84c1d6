package badgerstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/rhizome-chat/rhizome/dag"
)

// The journal makes Puts durable cheaply (docs/events.md 4.2). Badger makes
// its own write-ahead log durable by msync of a memory-mapped file, which on
// the reference machine costs about 20 µs of CPU per 1 KiB event at the group
// sizes ingest reaches; an append with write(2) and one fdatasync per group
// costs a few. So the store keeps its own append-only journal of the events
// each batch changed (stored or newly pending), fsyncs it once per group
// commit and answers Puts after that; badger runs without syncs in between.
// Every JournalMiB of journal the syncer makes badger durable (DB.Sync and
// the rotated memtable logs), starts a new segment and deletes the old ones,
// whose events badger now holds.
//
// After a crash badger holds everything up to the last checkpoint and some
// of the batches committed since, and the journal holds every acknowledged
// batch since then. Open replays the journal through the same code as Put:
// events badger already has are duplicates, the rest are applied in their
// original order (Put is deterministic given the state and the event).
// After kill -9 badger holds a prefix of the batches, and replay rebuilds
// exactly the state they produced. After a power loss it may not: badger
// replays each memtable log up to its first torn entry, so a rotated log
// can lose its tail while a newer one survived. Then an event can be back
// without its parent; replay stores the parent after it, Open checks the
// tips again and rebuilds them, and the one trace left is the arrival log,
// where that parent comes after its child (docs/events.md 4.2).

// journalDir is the journal's directory inside the store's directory.
const journalDir = "journal"

// segmentExt is the suffix of journal segment files, named by a 16-digit
// hexadecimal sequence number.
const segmentExt = ".jnl"

// recordHeader is the size of a record's header: the payload length and the
// CRC-32C of the payload, both little-endian uint32.
const recordHeader = 8

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// errJournalCorrupt is wrapped when a journal segment other than the last
// has a bad record: only the tail of the last segment can be torn by a
// crash.
var errJournalCorrupt = errors.New("badgerstore: corrupt journal")

// maxRecord is the largest record payload: a key ('e' or 'p' and an ID),
// event metadata and an event.
const maxRecord = 1 + dag.IDLen + metaLen + dag.MaxEventSize

// appendRecord appends one record, whose payload is the concatenation of
// parts, to b.
func appendRecord(b []byte, parts ...[]byte) []byte {
	n, sum := 0, uint32(0)
	for _, p := range parts {
		n += len(p)
		sum = crc32.Update(sum, crcTable, p)
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(n))
	b = binary.LittleEndian.AppendUint32(b, sum)
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// parseRecords splits a segment into record payloads. It stops at the first
// record that is incomplete or fails its checksum and reports the offset of
// that point and whether the segment ended cleanly.
func parseRecords(b []byte) (payloads [][]byte, good int, clean bool) {
	for len(b)-good >= recordHeader {
		n := int(binary.LittleEndian.Uint32(b[good:]))
		sum := binary.LittleEndian.Uint32(b[good+4:])
		if n == 0 || n > maxRecord || len(b)-good-recordHeader < n {
			return payloads, good, false
		}
		p := b[good+recordHeader : good+recordHeader+n]
		if crc32.Checksum(p, crcTable) != sum {
			return payloads, good, false
		}
		payloads = append(payloads, p)
		good += recordHeader + n
	}
	return payloads, good, good == len(b)
}

// journal is the append side, owned by the syncer.
type journal struct {
	dir  string
	seq  uint64   // sequence number of the current segment
	f    *os.File // the current segment
	size int64    // bytes written to it
	max  int64    // checkpoint once size reaches this
}

func segmentName(seq uint64) string { return fmt.Sprintf("%016x%s", seq, segmentExt) }

// segments lists the sequence numbers of the segments in dir, ascending.
func segments(dir string) ([]uint64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var seqs []uint64
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), segmentExt)
		if !ok {
			continue
		}
		seq, err := strconv.ParseUint(name, 16, 64)
		if err != nil || len(name) != 16 {
			return nil, fmt.Errorf("%w: unexpected file %s", errJournalCorrupt, e.Name())
		}
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	return seqs, nil
}

// readJournal returns the records of every segment in dir, oldest first,
// and the segments' sequence numbers. A torn record at the end of the last
// segment ends the journal (its Put was never acknowledged), and
// readJournal truncates the segment before it (fsynced), so that the
// segment reads clean once newer ones follow it; a bad record anywhere else
// is corruption.
func readJournal(dir string) (records [][]byte, seqs []uint64, err error) {
	seqs, err = segments(dir)
	if err != nil {
		return nil, nil, err
	}
	for i, seq := range seqs {
		name := filepath.Join(dir, segmentName(seq))
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, nil, fmt.Errorf("badgerstore: read journal: %w", err)
		}
		payloads, good, clean := parseRecords(b)
		if !clean {
			if i != len(seqs)-1 {
				return nil, nil, fmt.Errorf("%w: segment %s: bad record at offset %d of %d", errJournalCorrupt, segmentName(seq), good, len(b))
			}
			if err := truncateFile(name, int64(good)); err != nil {
				return nil, nil, err
			}
		}
		records = append(records, payloads...)
	}
	return records, seqs, nil
}

// truncateFile cuts the file at name to size and fsyncs it.
func truncateFile(name string, size int64) error {
	f, err := os.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("badgerstore: journal: %w", err)
	}
	err = f.Truncate(size)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("badgerstore: truncate torn journal tail: %w", err)
	}
	return nil
}

// openJournal starts a new segment after the given ones.
func openJournal(dir string, after []uint64, maxBytes int64) (*journal, error) {
	j := &journal{dir: dir, max: maxBytes}
	if len(after) > 0 {
		j.seq = after[len(after)-1] + 1
	}
	if err := j.create(); err != nil {
		return nil, err
	}
	return j, nil
}

// create opens the segment j.seq for appending and makes its name durable.
func (j *journal) create() error {
	f, err := os.OpenFile(filepath.Join(j.dir, segmentName(j.seq)), os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("badgerstore: journal: %w", err)
	}
	if err := syncDir(j.dir); err != nil {
		f.Close()
		return err
	}
	j.f, j.size = f, 0
	return nil
}

// append writes records and makes them durable.
func (j *journal) append(records []byte) error {
	if len(records) == 0 {
		return nil
	}
	n, err := j.f.Write(records)
	j.size += int64(n)
	if err != nil {
		return fmt.Errorf("badgerstore: journal write: %w", err)
	}
	if err := fdatasync(j.f); err != nil {
		return fmt.Errorf("badgerstore: journal fsync: %w", err)
	}
	return nil
}

// full reports whether the current segment is due for a checkpoint.
func (j *journal) full() bool { return j.size >= j.max }

// rotate starts a new segment and deletes every older one. Call it only
// after badger holds every event of the older segments durably.
func (j *journal) rotate() error {
	if err := j.f.Close(); err != nil {
		return fmt.Errorf("badgerstore: journal: %w", err)
	}
	j.seq++
	if err := j.create(); err != nil {
		return err
	}
	return removeSegmentsBefore(j.dir, j.seq)
}

// removeSegmentsBefore deletes the segments older than seq.
func removeSegmentsBefore(dir string, seq uint64) error {
	seqs, err := segments(dir)
	if err != nil {
		return err
	}
	removed := false
	for _, s := range seqs {
		if s >= seq {
			break
		}
		if err := os.Remove(filepath.Join(dir, segmentName(s))); err != nil {
			return fmt.Errorf("badgerstore: journal: %w", err)
		}
		removed = true
	}
	if removed {
		return syncDir(dir)
	}
	return nil
}

func (j *journal) close() error { return j.f.Close() }

// syncDir fsyncs a directory, making the creation and removal of its files
// durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("badgerstore: fsync %s: %w", dir, err)
	}
	return nil
}
