// Package helper is imported by pure and itself imports the network.
package helper

import "net" // want `imports "net"`

// Dial reaches the network.
func Dial() { _, _ = net.Dial("tcp", "127.0.0.1:1") }
