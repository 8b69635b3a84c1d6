package sim

import (
	"reflect"
	"testing"
)

// TestMemoChangesNothing: a run checks commits and signatures through the
// shared mls.Memo; without it, every server and device checks everything
// itself, and the report (every counter, every violation) is the same.
// The scenarios cover forks and reorgs (deep-reorg), an equivocating
// hub's twin commits and seals, forged votes, and crashes with restores
// from the feed (restart-churn).
func TestMemoChangesNothing(t *testing.T) {
	want := map[string]bool{"deep-reorg": true, "equivocating-hub": true, "forged": true, "restart-churn": true}
	n := 0
	for _, sc := range loadScenarios(t) {
		if !want[sc.Name] {
			continue
		}
		n++
		for _, seed := range []uint64{3, 11} {
			with := Run(sc, seed)
			shareChecks = false
			without := Run(sc, seed)
			shareChecks = true
			if !reflect.DeepEqual(with, without) {
				t.Errorf("%s seed %d: the memo changed the report:\nwith    %+v\nwithout %+v", sc.Name, seed, with, without)
			}
		}
	}
	if n != len(want) && *scenFlag == "" {
		t.Fatalf("found %d of the %d scenarios", n, len(want))
	}
}
