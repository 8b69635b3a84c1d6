// Package waitgroup starts goroutines through sync.WaitGroup.Go, as a call
// and as a method value, and waits on a sync.Cond.
package waitgroup

import (
	"sync"

	"golang.org/x/sync/errgroup" // want `imports "golang.org/x/sync/errgroup"`
)

// Twice runs f twice, concurrently.
func Twice(f func()) {
	var wg sync.WaitGroup // want `uses sync.WaitGroup`
	wg.Go(f)              // want `uses a Go method (it starts a goroutine)`
	start := wg.Go        // want `uses a Go method (it starts a goroutine)`
	start(f)
	wg.Wait()
}

// Group runs f on an errgroup.
func Group(g *errgroup.Group, f func() error) { g.Go(f) } // want `uses a Go method (it starts a goroutine)`

// Wait waits for another goroutine's signal.
func Wait(mu *sync.Mutex) {
	c := sync.NewCond(mu) // want `uses sync.NewCond`
	c.Wait()
}
