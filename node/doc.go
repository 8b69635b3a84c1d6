// Package node is the Rhizome daemon as a library: configuration, wiring of
// storage, transport, ordering and MLS delivery, the client HTTP API,
// metrics, and graceful shutdown in reverse start order.
//
// It is the only package that starts long-lived goroutines across subsystems
// and the only one that wires I/O together. cmd/rhizome stays a thin main.
package node
