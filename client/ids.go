package client

// RoomID names a room: "!" followed by the ID of its create event, such as
// "!QmRoom..." (docs/api.md, "Rooms"). Functions that take one also accept
// it without the "!".
type RoomID string

// EventID names a DAG event of a room (a sha2-256 multihash, "Qm..."). An
// epoch is named by the event of the commit that started it (the create
// event for epoch 0).
type EventID string

// MessageID is a MIMI message ID in hex (draft-ietf-mimi-content, Section
// 3.2): the same for every copy of a message, whatever epoch encrypted it.
type MessageID string
