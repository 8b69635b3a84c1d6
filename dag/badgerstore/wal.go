package badgerstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// walTracker closes a gap in badger's DB.Sync. DB.Sync msyncs the write-ahead
// log of the current memtable only. When the writer's commit of batch n+1
// fills the memtable, badger starts a new memtable (and a new WAL file,
// NNNNN.mem) before the syncer's DB.Sync for batch n; that DB.Sync then
// covers the new WAL, and batch n, in the old WAL, would be acknowledged
// without an fsync until badger has flushed the old memtable into a table.
// After each DB.Sync the syncer therefore looks for WAL files newer than the
// one it last knew and fsyncs every WAL file it passes, before answering.
//
// An fsync through a separate descriptor writes back the pages dirtied
// through badger's mapping: the page cache is per file. A WAL file that is
// already gone was flushed into a table, which badger syncs before it deletes
// the WAL.
type walTracker struct {
	dir string
	fid int // the newest WAL file known to the syncer
}

// memFileExt is badger's suffix of memtable WAL files (badger/v4 memtable.go).
const memFileExt = ".mem"

// newWALTracker finds the newest WAL file in dir, badger's current memtable
// right after Open.
func newWALTracker(dir string) (*walTracker, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	w := &walTracker{dir: dir, fid: -1}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), memFileExt)
		if !ok {
			continue
		}
		if fid, err := strconv.Atoi(name); err == nil {
			w.fid = max(w.fid, fid)
		}
	}
	if w.fid < 0 {
		return nil, fmt.Errorf("badgerstore: no memtable WAL (*%s) in %s", memFileExt, dir)
	}
	return w, nil
}

func (w *walTracker) path(fid int) string {
	return filepath.Join(w.dir, fmt.Sprintf("%05d%s", fid, memFileExt))
}

// syncRotated fsyncs every WAL file older than the newest one, from the
// last known one on, and returns how many it synced. Call it after DB.Sync.
func (w *walTracker) syncRotated() (int, error) {
	n := 0
	for {
		if _, err := os.Stat(w.path(w.fid + 1)); errors.Is(err, fs.ErrNotExist) {
			return n, nil
		} else if err != nil {
			return n, err
		}
		if err := syncFile(w.path(w.fid)); err != nil {
			return n, err
		}
		w.fid++
		n++
	}
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
