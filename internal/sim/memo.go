package sim

import (
	"sync"

	"github.com/rhizome-chat/rhizome/mls"
)

// The simulated servers and devices of a run share one process, and each
// checks every commit it sees as its own node or client would: every room
// engine observes it as an MLS external observer (mls.PublicGroup), and
// the devices process it as members, so the same commit is checked on the
// same parent epoch state once per server, and the same Ed25519
// signatures (the commit's FramedContent, its path leaf, the KeyPackages
// of the first commit, the GroupInfo) are verified by up to twice as many
// parties as there are servers. While runs are in progress the process
// checks through one [mls.Memo]: an observer's verdict on a commit is a
// pure function of the parent epoch's public state and the commit's
// bytes, and whether a signature verifies a pure function of key, message
// and signature, so the first check pays and the repeats answer from the
// memo with the same result. What fails is checked again every time (the
// memo holds successes only), so the forged and equivocating scenarios
// exercise the real rejections. Each engine still runs everything else
// itself: parsing, the room-state authorization of the commit against its
// own branch's state, the roster checks, the ordering machine.
//
// The memo is installed by the first run that starts and removed when the
// last one ends, so a process that also runs other code (cmd's tests) has
// it only while it simulates.

// The memo's generation sizes: far more distinct signatures and commits
// than the runs in progress check (a run verifies a few hundred
// signatures and observes under a hundred commits).
const (
	memoSignatures = 1 << 14
	memoCommits    = 1 << 11
)

// shareChecks turns the memo on (TestMemoChangesNothing runs without it).
var shareChecks = true

var memo struct {
	sync.Mutex
	runs int
	prev *mls.Memo // the memo installed before the first run
}

// shareVerifications installs the run's shared verification memo and
// returns the function that removes it once the run ends.
func shareVerifications() (done func()) {
	if !shareChecks {
		return func() {}
	}
	memo.Lock()
	defer memo.Unlock()
	if memo.runs == 0 {
		memo.prev = mls.SetMemo(mls.NewMemo(memoSignatures, memoCommits))
	}
	memo.runs++
	return func() {
		memo.Lock()
		defer memo.Unlock()
		memo.runs--
		if memo.runs == 0 {
			mls.SetMemo(memo.prev)
			memo.prev = nil
		}
	}
}
