// Package timealias reaches the wall clock without writing time.Now().
package timealias

import (
	"time"
	t "time"
)

// clockFn is the clock as a package-level function value.
var clockFn = time.Since // want `uses time.Since`

// Stamp reads the clock through a renamed import and a function value.
func Stamp() (time.Time, time.Duration) {
	now := time.Now                             // want `uses time.Now`
	_ = t.Now()                                 // want `uses time.Now`
	t.Sleep(1)                                  // want `uses time.Sleep`
	return now().In(time.Local), clockFn(now()) // want `uses time.Local`
}
