//go:build !windows

package platform

const name = "unix"
