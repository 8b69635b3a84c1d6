//go:build unix

package mls

import "syscall"

// processCPUTime returns the user plus system CPU time of the process in
// nanoseconds. Benchmarks report CPU time per operation beside wall time
// because the shared benchmark machine is heavily loaded.
func processCPUTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
