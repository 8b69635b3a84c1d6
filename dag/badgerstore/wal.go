package badgerstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// walTracker closes a gap in badger's DB.Sync. DB.Sync syncs the write-ahead
// log of the current memtable and the current value-log file only. Badger
// starts a new memtable log (NNNNN.mem) whenever a memtable fills, and a new
// value-log file (NNNNNN.vlog) every ValueLogFileSize, without syncing the
// old one when SyncWrites is off. A checkpoint that called DB.Sync alone
// would truncate the journal while writes in a rotated file were still
// only in the page cache. After DB.Sync the checkpoint therefore lists the
// files and fsyncs every one from the newest it knew before up to the
// current one.
//
// An fsync through a separate descriptor writes back the pages dirtied
// through badger's mapping: the page cache is per file. A memtable log that
// is already gone was flushed into a table, which badger syncs before it
// deletes the log.
type walTracker struct {
	dir   string
	kinds []*fileSeq
}

// fileSeq follows one kind of numbered badger file.
type fileSeq struct {
	ext    string // badger's suffix: memFileExt or vlogFileExt
	format string // badger's name format for a number
	fid    int    // the newest file known
}

// Badger's file names (badger/v4 memtable.go and value.go).
const (
	memFileExt  = ".mem"
	vlogFileExt = ".vlog"
)

// newWALTracker finds the newest memtable log and value-log file in dir,
// the current ones right after Open.
func newWALTracker(dir string) (*walTracker, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	w := &walTracker{dir: dir, kinds: []*fileSeq{
		{ext: memFileExt, format: "%05d" + memFileExt, fid: -1},
		{ext: vlogFileExt, format: "%06d" + vlogFileExt, fid: -1},
	}}
	for _, k := range w.kinds {
		fids := fileNumbers(entries, k.ext)
		if len(fids) == 0 {
			return nil, fmt.Errorf("badgerstore: no badger log file (*%s) in %s", k.ext, dir)
		}
		k.fid = fids[len(fids)-1]
	}
	return w, nil
}

// syncRotated fsyncs every memtable log and value-log file numbered from
// the last known one up to (not including) the newest of its kind, and
// returns how many it synced. Call it after DB.Sync. It lists the
// directory rather than stepping through numbers: badger deletes a
// memtable's log once the memtable is flushed, so numbers have gaps.
func (w *walTracker) syncRotated() (int, error) {
	entries, err := os.ReadDir(w.dir)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, k := range w.kinds {
		fids := fileNumbers(entries, k.ext)
		if len(fids) == 0 {
			continue
		}
		newest := fids[len(fids)-1]
		for _, fid := range fids {
			if fid < k.fid || fid >= newest {
				continue
			}
			if err := syncFile(filepath.Join(w.dir, fmt.Sprintf(k.format, fid))); err != nil {
				return n, err
			}
			n++
		}
		k.fid = max(k.fid, newest)
	}
	return n, nil
}

// fileNumbers returns the numbers of the files named <number><ext>,
// ascending.
func fileNumbers(entries []os.DirEntry, ext string) []int {
	var fids []int
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ext)
		if !ok {
			continue
		}
		if fid, err := strconv.Atoi(name); err == nil {
			fids = append(fids, fid)
		}
	}
	slices.Sort(fids)
	return fids
}

// syncBadgerFiles fsyncs every memtable log and value-log file in dir. Open
// calls it before it deletes the journal: badger's Open syncs the logs it
// replays and the newest value-log file, not an older value-log file the
// crashed process had rotated past since its last checkpoint.
func syncBadgerFiles(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, ext := range []string{memFileExt, vlogFileExt} {
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ext) {
				if err := syncFile(filepath.Join(dir, e.Name())); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// syncFile fsyncs the file at path; a file that no longer exists needs
// nothing.
func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("badgerstore: fsync %s: %w", path, err)
	}
	return nil
}
