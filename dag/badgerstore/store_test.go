package badgerstore

import (
	"crypto/ed25519"
	"testing"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/dag/dagtest"
)

func openTemp(t *testing.T, lim dag.Limits) dag.Store {
	s, err := Open(t.TempDir(), Options{Limits: lim, CacheMiB: 16})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestStoreSuite(t *testing.T) {
	dagtest.RunStoreTests(t, openTemp)
}

type ed25519Key = ed25519.PrivateKey
