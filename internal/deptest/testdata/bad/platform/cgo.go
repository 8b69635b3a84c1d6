//go:build cgo

package platform

import "C" // want `imports "C"`
