// Package pure breaks the first rules, so the checker has something to find.
package pure

import (
	"log/slog" // want `imports "log/slog"`
	"os"       // want `imports "os"`
	clock "time"

	"example.com/bad/helper"
)

// Leak does forbidden things.
func Leak() {
	go helper.Dial()                   // want `starts a goroutine`
	slog.Info("now", "t", clock.Now()) // want `uses time.Now`
	_ = os.Getenv("HOME")
}
