package client

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/dgraph-io/badger/v4"
)

// Key layout of the device's local badger store. Values are JSON unless
// noted. Every write is synced before it returns (WithSyncWrites).
//
//	m/ident                     identity: server, names, token, signature key
//	m/cursor                    uint64 big-endian: stream cursor processed
//	kp/<hex ref>                one KeyPackage bundle with its private keys
//	r/<room>/info               roomInfo
//	r/<room>/log/<seq u64>      logEntry: the room's replay log, in order
//	r/<room>/pend/<hex hash>    pendingCommit: an own commit not yet seen
//	r/<room>/sent/<hex id>      sentMessage: own messages, for re-sending
//	d/<room>/<hex id>           delivered MIMI message IDs (dedup index)
const (
	keyIdent  = "m/ident"
	keyCursor = "m/cursor"
	pfxKP     = "kp/"
)

func roomPrefix(room string) string  { return "r/" + room + "/" }
func keyRoomInfo(room string) []byte { return []byte(roomPrefix(room) + "info") }
func keyRoomLog(room string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte(roomPrefix(room)+"log/"), seq)
}
func keyPending(room, hash string) []byte { return []byte(roomPrefix(room) + "pend/" + hash) }
func keySent(room, id string) []byte      { return []byte(roomPrefix(room) + "sent/" + id) }
func keyDelivered(room, id string) []byte { return []byte("d/" + room + "/" + id) }

// store is the device's local state: a badger database in a directory only
// the device's user may read.
type store struct {
	db  *badger.DB
	dir string
}

func openStore(dir string) (*store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%w: create %s: %v", ErrStore, dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%w: chmod %s: %v", ErrStore, dir, err)
	}
	opts := badger.DefaultOptions(filepath.Clean(dir)).
		WithSyncWrites(true).
		WithLogger(nil).
		WithMemTableSize(4 << 20).
		WithNumMemtables(2).
		WithBlockCacheSize(4 << 20).
		WithIndexCacheSize(2 << 20).
		WithNumCompactors(2).
		WithValueThreshold(64 << 10)
	db, err := badger.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("%w: open %s (is another client using this directory?): %v", ErrStore, dir, err)
	}
	st := &store{db: db, dir: dir}
	st.tighten()
	return st, nil
}

// tighten makes every file of the store private (0600). badger creates
// some files 0644; the directory's 0700 already keeps others out, and this
// keeps the files private too when the directory is copied or its mode
// loosened. Run at open and close.
func (s *store) tighten() {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if e.Type().IsRegular() {
			_ = os.Chmod(filepath.Join(s.dir, e.Name()), 0o600)
		}
	}
}

func (s *store) close() error {
	err := s.db.Close()
	s.tighten()
	return err
}

// getJSON reads key into v; found is false when the key is absent.
func (s *store) getJSON(key []byte, v any) (found bool, err error) {
	err = s.db.View(func(txn *badger.Txn) error {
		it, err := txn.Get(key)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		found = true
		return it.Value(func(b []byte) error { return json.Unmarshal(b, v) })
	})
	if err != nil {
		return false, fmt.Errorf("%w: read %s: %v", ErrStore, key, err)
	}
	return found, nil
}

// batch collects writes that must land together (one badger transaction).
type batch struct {
	sets map[string][]byte
	dels []string
	err  error
}

func newBatch() *batch { return &batch{sets: map[string][]byte{}} }

func (b *batch) putJSON(key []byte, v any) {
	raw, err := json.Marshal(v)
	if err != nil && b.err == nil {
		b.err = err
	}
	b.sets[string(key)] = raw
}

func (b *batch) put(key, val []byte) { b.sets[string(key)] = val }

func (b *batch) del(key []byte) {
	delete(b.sets, string(key))
	b.dels = append(b.dels, string(key))
}

// commit writes the batch atomically and durably.
func (s *store) commit(b *batch) error {
	if b.err != nil {
		return fmt.Errorf("%w: encode: %v", ErrStore, b.err)
	}
	err := s.db.Update(func(txn *badger.Txn) error {
		for _, k := range b.dels {
			if err := txn.Delete([]byte(k)); err != nil {
				return err
			}
		}
		for k, v := range b.sets {
			if err := txn.Set([]byte(k), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w: write: %v", ErrStore, err)
	}
	return nil
}

// has reports whether key is present.
func (s *store) has(key []byte) (bool, error) {
	found := false
	err := s.db.View(func(txn *badger.Txn) error {
		_, err := txn.Get(key)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		found = err == nil
		return err
	})
	if err != nil {
		return false, fmt.Errorf("%w: read %s: %v", ErrStore, key, err)
	}
	return found, nil
}

// scan calls f for each key with prefix, in key order.
func (s *store) scan(prefix string, f func(key, val []byte) error) error {
	err := s.db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = []byte(prefix)
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			val, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			if err := f(item.KeyCopy(nil), val); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w: scan %s: %v", ErrStore, prefix, err)
	}
	return nil
}

func (s *store) cursor() (uint64, error) {
	var c uint64
	err := s.db.View(func(txn *badger.Txn) error {
		it, err := txn.Get([]byte(keyCursor))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return it.Value(func(b []byte) error {
			if len(b) != 8 {
				return errors.New("cursor is not 8 bytes")
			}
			c = binary.BigEndian.Uint64(b)
			return nil
		})
	})
	if err != nil {
		return 0, fmt.Errorf("%w: read cursor: %v", ErrStore, err)
	}
	return c, nil
}

func (b *batch) setCursor(c uint64) { b.put([]byte(keyCursor), binary.BigEndian.AppendUint64(nil, c)) }
