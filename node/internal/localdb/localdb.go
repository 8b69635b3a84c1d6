// Package localdb is the node-local badger database next to the DAG store:
// one database for accounts, joined rooms, the delivery feed and cursors,
// each kept by its own package under its own key prefixes (the layout is in
// docs/operations.md, "What is stored where"). This package opens it and
// holds the helpers those packages share. Every write is synced before it
// returns.
package localdb

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/rhizome-chat/rhizome/clientapi"
)

// ErrLocalDB is wrapped by failures of the node-local database.
var ErrLocalDB = errors.New("node: local database")

// DB is the node-local database.
type DB struct {
	db *badger.DB
}

// Open opens (or creates) the database in dir.
func Open(dir string) (*DB, error) {
	opts := badger.DefaultOptions(dir).
		WithSyncWrites(true).
		WithLogger(nil).
		WithMemTableSize(8 << 20).
		WithNumMemtables(2).
		WithBlockCacheSize(8 << 20).
		WithIndexCacheSize(4 << 20).
		WithNumCompactors(2).
		WithValueThreshold(1 << 20)
	db, err := badger.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("%w: open %s: %v", ErrLocalDB, dir, err)
	}
	return &DB{db: db}, nil
}

// Close closes the database.
func (d *DB) Close() error { return d.db.Close() }

// Update runs f in a read-write transaction and commits it (synced). An
// error of f that carries a client API code ([clientapi.Coded]) is returned
// as it is; any other is wrapped with ErrLocalDB.
func (d *DB) Update(f func(txn *badger.Txn) error) error {
	return wrap(d.db.Update(f))
}

// View runs f in a read-only transaction; errors as for Update.
func (d *DB) View(f func(txn *badger.Txn) error) error {
	return wrap(d.db.View(f))
}

// Badger returns the underlying database (tests read it whole).
func (d *DB) Badger() *badger.DB { return d.db }

func wrap(err error) error {
	var coded clientapi.Coded
	if err != nil && !errors.As(err, &coded) {
		return fmt.Errorf("%w: %w", ErrLocalDB, err)
	}
	return err
}

// U64 is the big-endian encoding of v, the form of counters and sequence
// numbers in keys and values.
func U64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// GetJSON reads key into v inside txn; ok is false when the key is absent.
func GetJSON(txn *badger.Txn, key []byte, v any) (bool, error) {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, item.Value(func(b []byte) error { return json.Unmarshal(b, v) })
}

// SetJSON stores v as JSON under key inside txn.
func SetJSON(txn *badger.Txn, key []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return txn.Set(key, b)
}

// GetU64 reads a big-endian uint64, 0 when absent.
func GetU64(txn *badger.Txn, key []byte) (uint64, error) {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var v uint64
	err = item.Value(func(b []byte) error {
		if len(b) != 8 {
			return fmt.Errorf("%w: value of %q has %d bytes, want 8", ErrLocalDB, key, len(b))
		}
		v = binary.BigEndian.Uint64(b)
		return nil
	})
	return v, err
}

// Next increments the counter s/<name> inside txn and returns its new value.
func Next(txn *badger.Txn, name string) (uint64, error) {
	key := []byte("s/" + name)
	v, err := GetU64(txn, key)
	if err != nil {
		return 0, err
	}
	v++
	return v, txn.Set(key, U64(v))
}
