package badgerstore

import (
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/rhizome-chat/rhizome/dag"
)

// layoutVersion is the key layout this build reads and writes
// (docs/events.md, "Key layout"), stored under the key 'v'.
//
//   - 1 (no 'v' key): one key 'x' room id per tip; pending events without
//     an arrival time.
//   - 2: one value 'y' room per room listing its tips, rewritten whole by
//     every insert: O(tips) per event.
//   - 3: one key 'x' room id per tip again (an insert deletes its parents'
//     keys and sets its own), and pending events carry their arrival ('q'
//     values, 'a' keys).
const layoutVersion = 3

// errLayout is wrapped when a directory holds a key layout this build does
// not read.
var errLayout = errors.New("badgerstore: unsupported key layout")

// checkLayout makes sure db holds layout version 3: it stamps an empty
// database, migrates a layout-1 or layout-2 database, and refuses any other
// version. now stamps the arrival of pending events that have none.
func checkLayout(db *badger.DB, now time.Time) error {
	var version []byte
	empty := true
	err := db.View(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte{tagVersion})
		if err == nil {
			version, err = item.ValueCopy(nil)
			return err
		}
		if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		opts := badger.DefaultIteratorOptions
		opts.PrefetchValues = false
		it := txn.NewIterator(opts)
		defer it.Close()
		it.Rewind()
		empty = !it.Valid()
		return nil
	})
	switch {
	case err != nil:
		return err
	case version == nil && empty:
		return setVersion(db)
	case version == nil:
		return migrate(db, 1, now)
	case len(version) == 1 && version[0] == 2:
		return migrate(db, 2, now)
	case len(version) != 1 || version[0] != layoutVersion:
		return fmt.Errorf("%w: version %x, this build reads version %d", errLayout, version, layoutVersion)
	}
	return deleteTipLists(db)
}

func setVersion(db *badger.DB) error {
	return db.Update(func(txn *badger.Txn) error {
		return txn.Set([]byte{tagVersion}, []byte{layoutVersion})
	})
}

// migrate brings a layout-1 or layout-2 database to layout 3. Layout 2's
// tip lists become tip keys (after deleting any layout-1 tip keys an
// interrupted migration to layout 2 left behind), and every pending event
// without an arrival gets now. The new keys are written and synced before
// the version, and the tip lists deleted only after it, so a crash at any
// point leaves either the old layout with its keys intact (the next Open
// migrates again, rewriting the same keys) or a complete layout 3, whose
// leftover lists the next Open deletes.
func migrate(db *badger.DB, from int, now time.Time) error {
	var writes []journalRecord
	if from == 2 {
		err := db.View(func(txn *badger.Txn) error {
			opts := badger.DefaultIteratorOptions
			opts.Prefix = []byte{tagTipList}
			it := txn.NewIterator(opts)
			defer it.Close()
			for it.Rewind(); it.Valid(); it.Next() {
				room, err := idAt(it.Item().Key(), 1)
				if err != nil {
					return err
				}
				v, err := it.Item().ValueCopy(nil)
				if err != nil {
					return err
				}
				ids, err := decodeIDs(v)
				if err != nil {
					return err
				}
				for _, id := range ids {
					writes = append(writes, journalRecord{k: key(tagTip, room[:], id[:]), v: []byte{}})
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("badgerstore: migrate layout 2: %w", err)
		}
		old, err := prefixKeys(db, []byte{tagTip})
		if err != nil {
			return fmt.Errorf("badgerstore: migrate layout 2: %w", err)
		}
		tips := map[string]bool{}
		for _, w := range writes {
			tips[string(w.k)] = true
		}
		for _, k := range old {
			if !tips[string(k)] {
				writes = append(writes, journalRecord{k: k, del: true})
			}
		}
	}
	stamps, err := stampArrivals(db, now)
	if err != nil {
		return fmt.Errorf("badgerstore: migrate layout %d: %w", from, err)
	}
	if err := writeAll(db, append(writes, stamps...)); err != nil {
		return fmt.Errorf("badgerstore: migrate layout %d: %w", from, err)
	}
	if err := db.Sync(); err != nil {
		return fmt.Errorf("badgerstore: migrate layout %d: %w", from, err)
	}
	if err := setVersion(db); err != nil {
		return fmt.Errorf("badgerstore: migrate layout %d: %w", from, err)
	}
	return deleteTipLists(db)
}

// stampArrivals returns the writes that give every pending event an
// arrival: now where its 'q' value is empty, and the 'a' key of its
// arrival (again, if an interrupted migration wrote one already).
func stampArrivals(db *badger.DB, now time.Time) ([]journalRecord, error) {
	var writes []journalRecord
	err := db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = []byte{tagPendingRoom}
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().KeyCopy(nil)
			id, err := idAt(k, 1+dag.IDLen)
			if err != nil {
				return err
			}
			ns, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			if len(ns) != uint64Len {
				ns = arrival(now)
				writes = append(writes, journalRecord{k: k, v: ns})
			}
			writes = append(writes, journalRecord{k: key(tagArrival, ns, id[:]), v: []byte{}})
		}
		return nil
	})
	return writes, err
}

// deleteTipLists deletes layout-2 tip lists left over by a migration.
func deleteTipLists(db *badger.DB) error {
	old, err := prefixKeys(db, []byte{tagTipList})
	if err != nil || len(old) == 0 {
		return err
	}
	dels := make([]journalRecord, len(old))
	for i, k := range old {
		dels[i] = journalRecord{k: k, del: true}
	}
	if err := writeAll(db, dels); err != nil {
		return fmt.Errorf("badgerstore: delete layout-2 tip lists: %w", err)
	}
	return db.Sync()
}

// prefixKeys returns a copy of every key that starts with prefix, in order.
func prefixKeys(db *badger.DB, prefix []byte) (keys [][]byte, err error) {
	err = db.View(func(txn *badger.Txn) error {
		keys, err = prefixKeysTxn(txn, prefix)
		return err
	})
	return keys, err
}

// prefixKeysTxn is prefixKeys in txn.
func prefixKeysTxn(txn *badger.Txn, prefix []byte) ([][]byte, error) {
	var keys [][]byte
	opts := badger.DefaultIteratorOptions
	opts.PrefetchValues = false
	opts.Prefix = prefix
	it := txn.NewIterator(opts)
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		keys = append(keys, it.Item().KeyCopy(nil))
	}
	return keys, nil
}
