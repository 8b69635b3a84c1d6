package httpapi

import "github.com/rhizome-chat/rhizome/node/internal/ratelimit"

// HTTPLimits bounds the client API's HTTP server. Every field must be
// positive; DefaultConfig has the defaults.
type HTTPLimits struct {
	// ReadHeaderTimeoutMS is how long a client may take to send a
	// request's headers, from the moment its connection is accepted.
	ReadHeaderTimeoutMS int `json:"read_header_timeout_ms"`
	// BodyTimeoutMS is how long a client may take to send a request body.
	BodyTimeoutMS int `json:"body_timeout_ms"`
	// WriteTimeoutMS bounds handling and writing one answer, after the
	// body time; the event stream instead gets this long for each line it
	// writes.
	WriteTimeoutMS int `json:"write_timeout_ms"`
	// IdleTimeoutMS closes a keep-alive connection idle this long.
	IdleTimeoutMS int `json:"idle_timeout_ms"`
	// MaxHeaderBytes bounds a request's header block.
	MaxHeaderBytes int `json:"max_header_bytes"`
	// MaxConns bounds open connections. At the limit a new connection
	// closes the one that has waited longest for its headers or idled
	// longest; if every connection is busy, the new one is closed.
	MaxConns int `json:"max_conns"`
	// MaxConnsPerIP bounds the open connections of one remote address
	// (an IPv6 /64); loopback addresses are exempt.
	MaxConnsPerIP int `json:"max_conns_per_ip"`
}

// RateLimits are the client API's token buckets. Over a limit the answer is
// 429 rate_limited with Retry-After.
type RateLimits struct {
	// Device limits the requests of one device (every authenticated request).
	Device ratelimit.Rate `json:"device"`
	// User limits the requests of all devices of one user together.
	User ratelimit.Rate `json:"user"`
	// Room limits the submissions (messages, proposals, commits, state
	// changes) to one room from this server's clients together.
	Room ratelimit.Rate `json:"room"`
	// RegisterIP limits registrations from one remote address (an IPv6 /64).
	RegisterIP ratelimit.Rate `json:"register_ip"`
}
