// Package p2p is Rhizome's federation transport on libp2p: one host per
// server (TCP and QUIC, Noise, peer ID = server identity), one gossipsub topic
// per room for push, a versioned request/response sync protocol for pull that
// heals gaps and partitions, the KeyPackage directory protocol between home
// servers, discovery, rate limits and peer scoring.
//
// # Imports
//
// May import: go-libp2p, go-libp2p-pubsub, dag and the standard library. It
// does not decide room membership itself; it asks the node through interfaces.
package p2p
