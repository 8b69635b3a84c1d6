package badgerstore

import (
	"errors"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Event encodings are kept in badger's value log rather than in the LSM tree
// (docs/events.md, "Badger store"): a value of at least valueThreshold bytes
// is written once, to the value log, and the tree holds a 12-byte pointer to
// it. This halves the bytes copied per event (no copy in the memtable, none
// in the tables flushed from it, none in compactions).
//
// Stored events are never deleted, so the only garbage in the value log is
// pending events that were released or dropped (their 'p' values) and long
// waiter lists that were rewritten. The store asks badger to rewrite value-log
// files that are mostly garbage every Options.GCInterval.
const (
	valueThreshold   = 512
	valueLogFileSize = 256 << 20
	gcDiscardRatio   = 0.5
)

// gcLoop runs value-log garbage collection every interval until stop is
// closed.
func (s *Store) gcLoop(interval time.Duration, stop <-chan struct{}) {
	defer close(s.gcDone)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if err := s.collectGarbage(stop); err != nil {
				s.log.Warn("badgerstore: value-log gc", "err", err)
			}
		}
	}
}

// collectGarbage rewrites value-log files while badger finds one with at
// least gcDiscardRatio garbage, or until stop is closed.
func (s *Store) collectGarbage(stop <-chan struct{}) error {
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		err := s.db.RunValueLogGC(gcDiscardRatio)
		if errors.Is(err, badger.ErrNoRewrite) || errors.Is(err, badger.ErrRejected) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
