package client

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/rhizome-chat/rhizome/clientapi"
	"github.com/rhizome-chat/rhizome/internal/mimicontent"
	"github.com/rhizome-chat/rhizome/mls"
)

// keySentCipher indexes the sent log by the hash of the MLS ciphertext, so
// that an own message coming back on the stream is recognized even before
// the node's answer named its event.
func keySentCipher(room string, cipher []byte) []byte {
	return []byte(roomPrefix(room) + "sentc/" + commitHash(cipher))
}

// sentMessage is an own message in the sent log: enough to re-send it
// under the same MIMI message ID in another epoch.
type sentMessage struct {
	ID      string `json:"id"`
	Content []byte `json:"content"` // MIMI content bytes
	Epoch   string `json:"epoch"`   // epoch it was last encrypted in
	Cipher  []byte `json:"cipher"`  // last MLS PrivateMessage
	Event   string `json:"event,omitempty"`
	Resent  int    `json:"resent,omitempty"`
}

// Sent is the result of sending a message.
type Sent struct {
	Room  RoomID    `json:"room"`
	ID    MessageID `json:"id"`    // MIMI message ID, hex
	Event EventID   `json:"event"` // DAG event ID
	Epoch EventID   `json:"epoch"`
}

func (c *Client) salt() ([mimicontent.SaltSize]byte, error) {
	var s [mimicontent.SaltSize]byte
	_, err := c.rand.Read(s[:])
	return s, err
}

// Send sends text (GFM-MIMI markdown) to the room.
func (c *Client) Send(ctx context.Context, rid RoomID, text string) (Sent, error) {
	room := string(rid)
	if strings.TrimSpace(text) == "" {
		return Sent{}, fmt.Errorf("%w: empty message", ErrBadInput)
	}
	return c.sendWith(ctx, room, func(user, roomURI string, salt [16]byte) (*mimicontent.Content, error) {
		return mimicontent.NewText(user, roomURI, text, salt), nil
	})
}

// Reply sends text as a reply to the message with ID to (hex).
func (c *Client) Reply(ctx context.Context, rid RoomID, to MessageID, text string) (Sent, error) {
	room := string(rid)
	return c.sendWith(ctx, room, func(user, roomURI string, salt [16]byte) (*mimicontent.Content, error) {
		id, err := c.knownMessage(room, string(to))
		if err != nil {
			return nil, err
		}
		return mimicontent.Reply(user, roomURI, id, text, salt), nil
	})
}

// React sends a reaction (one emoji, say) to the message with ID to.
func (c *Client) React(ctx context.Context, rid RoomID, to MessageID, reaction string) (Sent, error) {
	room := string(rid)
	return c.sendWith(ctx, room, func(user, roomURI string, salt [16]byte) (*mimicontent.Content, error) {
		id, err := c.knownMessage(room, string(to))
		if err != nil {
			return nil, err
		}
		return mimicontent.Reaction(user, roomURI, id, reaction, salt), nil
	})
}

// Edit replaces the text of an own message.
func (c *Client) Edit(ctx context.Context, rid RoomID, id MessageID, text string) (Sent, error) {
	room := string(rid)
	return c.sendWith(ctx, room, func(_, _ string, salt [16]byte) (*mimicontent.Content, error) {
		prev, pid, err := c.ownMessage(room, string(id))
		if err != nil {
			return nil, err
		}
		return mimicontent.Edit(prev, pid, text, salt), nil
	})
}

// Delete retracts an own message (or unlikes an own reaction).
func (c *Client) Delete(ctx context.Context, rid RoomID, id MessageID) (Sent, error) {
	room := string(rid)
	return c.sendWith(ctx, room, func(_, _ string, salt [16]byte) (*mimicontent.Content, error) {
		prev, pid, err := c.ownMessage(room, string(id))
		if err != nil {
			return nil, err
		}
		return mimicontent.Delete(prev, pid, salt), nil
	})
}

func parseMessageID(s string) (mimicontent.MessageID, error) {
	b, err := hex.DecodeString(s)
	if err != nil {
		return mimicontent.MessageID{}, fmt.Errorf("%w: message ID %q is not hex", ErrBadInput, s)
	}
	id, err := mimicontent.MessageIDFromBytes(b)
	if err != nil {
		return id, fmt.Errorf("%w: message ID %q: %v", ErrBadInput, s, err)
	}
	return id, nil
}

// knownMessage checks that a message ID was delivered to or sent by this
// device (called with c.mu held).
func (c *Client) knownMessage(room, s string) (mimicontent.MessageID, error) {
	id, err := parseMessageID(s)
	if err != nil {
		return id, err
	}
	r, _ := c.room(room)
	for _, k := range [][]byte{keyDelivered(r.info.Room, s), keySent(r.info.Room, s)} {
		if ok, err := c.st.has(k); err != nil || ok {
			return id, err
		}
	}
	return id, fmt.Errorf("%w (%s)", ErrUnknownMessage, s)
}

// ownMessage returns the content of an own sent message (c.mu held).
func (c *Client) ownMessage(room, s string) (*mimicontent.Content, mimicontent.MessageID, error) {
	id, err := parseMessageID(s)
	if err != nil {
		return nil, id, err
	}
	r, _ := c.room(room)
	var sm sentMessage
	found, err := c.st.getJSON(keySent(r.info.Room, s), &sm)
	if err != nil {
		return nil, id, err
	}
	if !found {
		return nil, id, fmt.Errorf("%w: %s is not a message this device sent; only the sender may edit or delete it", ErrBadInput, s)
	}
	content, err := mimicontent.Decode(sm.Content)
	if err != nil {
		return nil, id, fmt.Errorf("%w: stored message: %v", ErrStore, err)
	}
	return content, id, nil
}

// sendWith builds a MIMI message, encrypts it in the current epoch,
// records it in the sent log (before submitting, so that a crash cannot
// reuse its key generation) and submits it.
func (c *Client) sendWith(ctx context.Context, roomID string, build func(user, roomURI string, salt [16]byte) (*mimicontent.Content, error)) (Sent, error) {
	c.mu.Lock()
	r, err := c.joinedRoom(roomID)
	if err != nil {
		c.mu.Unlock()
		return Sent{}, err
	}
	salt, err := c.salt()
	if err != nil {
		c.mu.Unlock()
		return Sent{}, err
	}
	content, err := build(c.id.UserURI, r.roomURI(), salt)
	if err != nil {
		c.mu.Unlock()
		return Sent{}, err
	}
	data, mid, err := content.EncodeWithID()
	if err != nil {
		c.mu.Unlock()
		return Sent{}, fmt.Errorf("%w: %v", ErrBadInput, err)
	}
	if err := content.Validate(); err != nil {
		c.mu.Unlock()
		return Sent{}, fmt.Errorf("%w: %v", ErrBadInput, err)
	}
	sm := &sentMessage{ID: hex.EncodeToString(mid[:]), Content: data}
	err = c.encryptSent(r, sm)
	room := r.info.Room
	c.mu.Unlock()
	if err != nil {
		return Sent{}, err
	}
	return c.postSent(ctx, room, sm)
}

// encryptSent encrypts sm in the room's current epoch and persists the
// sent log entry and the ratchet step (c.mu held).
func (c *Client) encryptSent(r *room, sm *sentMessage) error {
	msg, err := r.g.Send(c.rand, nil, sm.Content)
	if err != nil {
		return fmt.Errorf("client: encrypt: %w", err)
	}
	raw, err := msg.Marshal()
	if err != nil {
		return err
	}
	sm.Epoch, sm.Cipher, sm.Event = r.epoch, raw, ""
	b := newBatch()
	b.putJSON(keyRoomLog(r.info.Room, r.seq), &logEntry{Op: "sent", Event: r.epoch, AtMS: c.now().UnixMilli()})
	r.seq++
	b.putJSON(keySent(r.info.Room, sm.ID), sm)
	b.putJSON(keySentCipher(r.info.Room, raw), sm.ID)
	return c.st.commit(b)
}

// postSent submits the encrypted message and records its event ID. When
// the node answers stale_epoch (its canonical epoch moved on, and a member
// who joined since could not decrypt the message), the device catches up
// and encrypts the same content again in the new epoch, so the message
// keeps its MIMI ID.
func (c *Client) postSent(ctx context.Context, room string, sm *sentMessage) (Sent, error) {
	var resp clientapi.Submitted
	for attempt := 0; ; attempt++ {
		c.mu.Lock()
		a := c.api()
		c.mu.Unlock()
		path := "/v1/rooms/" + url.PathEscape(room) + "/messages?epoch=" + url.QueryEscape(sm.Epoch)
		err := a.do(ctx, "POST", path, "application/octet-stream", sm.Cipher, &resp)
		if err == nil {
			break
		}
		if !clientapi.HasCode(err, clientapi.CodeStaleEpoch) || attempt+1 >= maxCommitAttempts {
			return Sent{}, err
		}
		if err := c.catchUp(ctx, room); err != nil {
			return Sent{}, err
		}
		c.mu.Lock()
		r, err := c.joinedRoom(room)
		if err == nil {
			err = c.encryptSent(r, sm)
		}
		c.mu.Unlock()
		if err != nil {
			return Sent{}, err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	sm.Event = resp.Event
	b := newBatch()
	b.putJSON(keySent(room, sm.ID), sm)
	if err := c.st.commit(b); err != nil {
		return Sent{}, err
	}
	return Sent{Room: RoomID(room), ID: MessageID(sm.ID), Event: EventID(resp.Event), Epoch: EventID(sm.Epoch)}, nil
}

// resend re-encrypts an own message in the room's current epoch and
// submits it again: same MIMI content bytes, so the same message ID, which
// receivers deduplicate.
func (c *Client) resend(ctx context.Context, room, id string) error {
	c.mu.Lock()
	r, err := c.joinedRoom(room)
	if err != nil {
		c.mu.Unlock()
		return err
	}
	var sm sentMessage
	found, err := c.st.getJSON(keySent(room, id), &sm)
	if err != nil || !found || sm.Epoch == r.epoch {
		c.mu.Unlock()
		return err
	}
	sm.Resent++
	err = c.encryptSent(r, &sm)
	if err == nil {
		c.resent++
	}
	c.mu.Unlock()
	if err != nil {
		return err
	}
	_, err = c.postSent(ctx, room, &sm)
	return err
}

// sentInEpochs lists own message IDs last encrypted in one of the epochs.
func (c *Client) sentInEpochs(room string, epochs []string) ([]string, error) {
	var out []string
	err := c.st.scan(roomPrefix(room)+"sent/", func(_, v []byte) error {
		var sm sentMessage
		if err := jsonUnmarshal(v, &sm); err != nil {
			return err
		}
		if slices.Contains(epochs, sm.Epoch) {
			out = append(out, sm.ID)
		}
		return nil
	})
	return out, err
}

var _ = mls.ContentTypeApplication

func encodeHex(b []byte) string { return hex.EncodeToString(b) }
