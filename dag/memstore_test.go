package dag_test

import (
	"testing"

	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/dag/dagtest"
)

func TestMemStore(t *testing.T) {
	dagtest.RunStoreTests(t, func(t *testing.T, lim dag.Limits) dag.Store { return dag.NewMemStore(lim) })
}
