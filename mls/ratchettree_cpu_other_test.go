//go:build !unix

package mls

// processCPUTime is not measured on this platform.
func processCPUTime() int64 { return 0 }
