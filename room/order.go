package room

import (
	"fmt"
	"slices"

	"github.com/rhizome-chat/rhizome/dag"
)

// OrderRecord is an order line of the delivery feed: the canonical chain
// or its certified prefix changed (docs/api.md, "Ordering"). IDs are in
// their text form; the JSON names are the node's on-disk feed format.
type OrderRecord struct {
	Tip         string   `json:"t"`
	Certified   string   `json:"c"`
	Undone      []string `json:"u,omitempty"` // newest first
	Applied     []string `json:"a,omitempty"` // oldest first
	RetainUntil int64    `json:"ru,omitempty"`
}

// report compares the machine's canonical chain and certified prefix with
// the last reported ones and returns the order record for the change, or
// nil if nothing changed. The state follows the new chain.
func (e *Engine) report() *OrderRecord {
	chain := dids(e.m.Canonical())
	certLen := e.m.CertifiedLen()
	old := e.b.chain
	if slices.Equal(chain, old) && certLen == e.certLen {
		return nil
	}
	fp := 0
	for fp < len(chain) && fp < len(old) && chain[fp] == old[fp] {
		fp++
	}
	rec := &OrderRecord{}
	for i := len(old) - 1; i >= fp; i-- {
		rec.Undone = append(rec.Undone, old[i].String())
	}
	for _, c := range chain[fp:] {
		rec.Applied = append(rec.Applied, c.String())
	}
	if len(rec.Undone) > 0 {
		rec.RetainUntil = e.retainUntil
	}
	e.retainUntil = 0
	e.b.setChain(chain)
	e.version++
	e.certLen = certLen
	rec.Tip, rec.Certified = e.Tip().String(), e.Certified().String()
	return rec
}

// replayRecord applies a recorded order record to the reported chain
// (restore: the feed holds every record in order).
func (e *Engine) replayRecord(rec *OrderRecord) error {
	old := e.b.chain
	n := len(old) - len(rec.Undone)
	if n < 0 {
		return fmt.Errorf("room: order record of room %v undoes %d commits of a chain of %d", e.room, len(rec.Undone), len(old))
	}
	chain := slices.Clone(old[:n])
	for _, s := range rec.Applied {
		id, err := dag.ParseEventID(s)
		if err != nil {
			return fmt.Errorf("room: order record of room %v: %w", e.room, err)
		}
		chain = append(chain, id)
	}
	// The snapshots follow the chain at once: the commits recorded after
	// this record are authorized against states on it.
	e.b.setChain(chain)
	e.certLen = 0
	if rec.Certified != e.b.root.String() {
		for i, c := range chain {
			if c.String() == rec.Certified {
				e.certLen = i + 1
			}
		}
	}
	return nil
}
