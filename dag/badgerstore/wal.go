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

// walTracker closes a gap in badger's DB.Sync. DB.Sync syncs the write-ahead
// log of the current memtable and the current value-log file only. Badger
// starts a new memtable log (NNNNN.mem) whenever a memtable fills, and a new
// value-log file (NNNNNN.vlog) every ValueLogFileSize, without syncing the
// old one when SyncWrites is off. A checkpoint that called DB.Sync alone
// would truncate the journal while writes in a rotated file were still
// only in the page cache. After DB.Sync the checkpoint therefore looks for
// files newer than the ones it last knew and fsyncs every file it passes.
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
		for _, e := range entries {
			name, ok := strings.CutSuffix(e.Name(), k.ext)
			if !ok {
				continue
			}
			if fid, err := strconv.Atoi(name); err == nil {
				k.fid = max(k.fid, fid)
			}
		}
		if k.fid < 0 {
			return nil, fmt.Errorf("badgerstore: no badger log file (*%s) in %s", k.ext, dir)
		}
	}
	return w, nil
}

// syncRotated fsyncs every memtable log and value-log file older than the
// newest of its kind, from the last known one on, and returns how many it
// synced. Call it after DB.Sync.
func (w *walTracker) syncRotated() (int, error) {
	n := 0
	for _, k := range w.kinds {
		for {
			path := func(fid int) string { return filepath.Join(w.dir, fmt.Sprintf(k.format, fid)) }
			if _, err := os.Stat(path(k.fid + 1)); errors.Is(err, fs.ErrNotExist) {
				break
			} else if err != nil {
				return n, err
			}
			if err := syncFile(path(k.fid)); err != nil {
				return n, err
			}
			k.fid++
			n++
		}
	}
	return n, nil
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
