// Package runtimeimport asks the runtime how many CPUs there are.
package runtimeimport

import "runtime" // want `imports "runtime"`

// Workers is one per CPU: a different number on every machine.
func Workers() int { return runtime.GOMAXPROCS(0) }
