// Package clientapi declares the wire types of Rhizome's client HTTP API,
// shared by the node's handlers (package node) and the Go client (package
// client): every request and response body, the lines of the event
// stream, and the error codes with the error body. docs/api.md describes
// the API; each type cites the section it implements.
//
// The package holds no behaviour: only types, constants and small pure
// helpers. Byte fields are []byte, which encoding/json writes as standard
// base64. JSON field names are those of docs/api.md.
package clientapi
