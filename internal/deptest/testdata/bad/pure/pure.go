// Package pure breaks every rule, so the checker has something to find.
package pure

import (
	"log/slog"
	"os"
	clock "time"

	"example.com/bad/helper"
)

// Leak does forbidden things.
func Leak() {
	go helper.Dial()
	slog.Info("now", "t", clock.Now())
	_ = os.Getenv("HOME")
}
