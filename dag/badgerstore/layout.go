package badgerstore

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/dgraph-io/badger/v4"

	"github.com/rhizome-chat/rhizome/dag"
)

// layoutVersion is the key layout this build reads and writes
// (docs/events.md, "Key layout"), stored under the key 'v'.
//
//   - 1 (no 'v' key): one key 'x' room id per tip.
//   - 2: one value 'y' room per room listing its tips.
const layoutVersion = 2

// errLayout is wrapped when a directory holds a key layout this build does
// not read.
var errLayout = errors.New("badgerstore: unsupported key layout")

// checkLayout makes sure db holds layout version 2: it stamps an empty
// database, migrates a layout-1 database, and refuses any other version.
func checkLayout(db *badger.DB) error {
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
	case version != nil:
		if len(version) != 1 || version[0] != layoutVersion {
			return fmt.Errorf("%w: version %x, this build reads version %d", errLayout, version, layoutVersion)
		}
		return deleteOldTips(db)
	case empty:
		return setVersion(db)
	}
	return migrateV1(db)
}

func setVersion(db *badger.DB) error {
	return db.Update(func(txn *badger.Txn) error {
		return txn.Set([]byte{tagVersion}, []byte{layoutVersion})
	})
}

// migrateV1 turns the per-tip keys of layout 1 into one tip list per room.
// The lists are written and synced before the version, and the old keys are
// deleted only after it, so a crash at any point leaves either a layout-1
// database with its old keys intact (the next Open migrates again) or a
// complete layout-2 one, whose leftover old keys the next Open deletes.
func migrateV1(db *badger.DB) error {
	keys, err := prefixKeys(db, []byte{tagOldTip})
	if err != nil {
		return fmt.Errorf("badgerstore: migrate layout 1: %w", err)
	}
	tips := map[dag.RoomID][]dag.EventID{}
	for _, k := range keys {
		if len(k) != 1+2*dag.IDLen {
			return fmt.Errorf("badgerstore: migrate layout 1: tip key %x: %w", k, errCorrupt)
		}
		room, _ := idAt(k, 1)
		id, _ := idAt(k, 1+dag.IDLen)
		tips[dag.RoomID(room)] = append(tips[dag.RoomID(room)], id) // ascending: key order
	}
	rooms := slices.SortedFunc(maps.Keys(tips), func(a, b dag.RoomID) int { return dag.EventID(a).Compare(dag.EventID(b)) })
	lists := make([]journalRecord, len(rooms))
	for i, room := range rooms {
		lists[i] = journalRecord{key(tagTips, room[:]), encodeIDs(tips[room])}
	}
	if err := writeAll(db, lists); err != nil {
		return fmt.Errorf("badgerstore: migrate layout 1: %w", err)
	}
	if err := db.Sync(); err != nil {
		return fmt.Errorf("badgerstore: migrate layout 1: %w", err)
	}
	if err := setVersion(db); err != nil {
		return fmt.Errorf("badgerstore: migrate layout 1: %w", err)
	}
	return deleteOldTips(db)
}

// deleteOldTips deletes layout-1 tip keys left over by a migration.
func deleteOldTips(db *badger.DB) error {
	old, err := prefixKeys(db, []byte{tagOldTip})
	if err != nil || len(old) == 0 {
		return err
	}
	dels := make([]journalRecord, len(old))
	for i, k := range old {
		dels[i] = journalRecord{k: k} // no value: delete
	}
	if err := writeAll(db, dels); err != nil {
		return fmt.Errorf("badgerstore: delete layout-1 tips: %w", err)
	}
	return db.Sync()
}

// prefixKeys returns a copy of every key that starts with prefix, in order.
func prefixKeys(db *badger.DB, prefix []byte) ([][]byte, error) {
	var keys [][]byte
	err := db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.PrefetchValues = false
		opts.Prefix = prefix
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			keys = append(keys, it.Item().KeyCopy(nil))
		}
		return nil
	})
	return keys, err
}
