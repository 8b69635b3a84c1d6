package client

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/rhizome-chat/rhizome/clientapi"
	"github.com/rhizome-chat/rhizome/internal/mimicontent"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// Delivery is one message delivered to the device: every MIMI message of a
// room is reported once (deduplicated by message ID), whether it arrived
// once, twice, or re-sent after a branch move.
type Delivery struct {
	Room        RoomID    `json:"room"`
	ID          MessageID `json:"id"`     // MIMI message ID, hex
	Sender      string    `json:"sender"` // user URI (MLS-authenticated)
	Device      string    `json:"device"` // device URI
	Epoch       EventID   `json:"epoch"`  // commit event ID of the epoch that encrypted it
	EpochNumber uint64    `json:"epoch_number"`
	Event       EventID   `json:"event"` // DAG event ID
	TS          int64     `json:"ts"`    // origin server time, ms (display only)
	Raw         []byte    `json:"raw"`   // the MIMI content bytes as sent
	Own         bool      `json:"own"`   // sent by this device
}

// Content decodes the message's MIMI content.
func (d Delivery) Content() (*mimicontent.Content, error) { return mimicontent.Decode(d.Raw) }

// Text returns the message's text body, or "" for a delete or a non-text
// body.
func (d Delivery) Text() string {
	c, err := d.Content()
	if err != nil {
		return ""
	}
	return textOf(c)
}

func textOf(c *mimicontent.Content) string {
	if sp, ok := c.Body.Part.(mimicontent.SinglePart); ok {
		return string(sp.Content)
	}
	if sp, ok := c.Body.Part.(*mimicontent.SinglePart); ok {
		return string(sp.Content)
	}
	return ""
}

const pfxQueue = "q/"

// deliver records a message as delivered and queues it for Sync's
// callback, unless its ID was delivered before.
func (c *Client) deliver(b *batch, d *Delivery) error {
	k := keyDelivered(string(d.Room), string(d.ID))
	if _, inBatch := b.sets[string(k)]; inBatch {
		return nil
	}
	dup, err := c.st.has(k)
	if err != nil || dup {
		return err
	}
	b.putJSON(k, d)
	c.qseq++
	b.putJSON(binary.BigEndian.AppendUint64([]byte(pfxQueue), c.qseq), [2]string{string(d.Room), string(d.ID)})
	c.delivered++
	return nil
}

// drainSignal wakes a Sync waiting for queued deliveries.
func (c *Client) drainSignal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// drain hands every queued delivery to fn, oldest first, and removes it
// from the queue once fn returned.
func (c *Client) drain(ctx context.Context, fn func(Delivery)) error {
	type item struct {
		key []byte
		d   Delivery
	}
	var items []item
	c.mu.Lock()
	err := c.st.scan(pfxQueue, func(k, v []byte) error {
		var ref [2]string
		if err := json.Unmarshal(v, &ref); err != nil {
			return err
		}
		var d Delivery
		if _, err := c.st.getJSON(keyDelivered(ref[0], ref[1]), &d); err != nil {
			return err
		}
		items = append(items, item{k, d})
		return nil
	})
	c.mu.Unlock()
	if err != nil {
		return err
	}
	for _, it := range items {
		if ctx.Err() != nil {
			return nil // the rest stays queued for the next Sync
		}
		fn(it.d)
		b := newBatch()
		b.del(it.key)
		c.mu.Lock()
		err := c.st.commit(b)
		c.mu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

// readStream reads GET /v1/stream<query> and calls f for each line until f
// fails, the stream ends or ctx is done.
func (c *Client) readStream(ctx context.Context, a *api, query string, f func(*clientapi.StreamLine) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+"/v1/stream"+query, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	resp, err := a.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: stream: %v", ErrUnreachable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return apiError(http.MethodGet, "/v1/stream", resp.StatusCode, raw)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 4<<20)
	for sc.Scan() {
		var l clientapi.StreamLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			continue // a line we do not understand
		}
		if err := f(&l); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%w: stream: %v", ErrUnreachable, err)
	}
	return nil
}

// Sync runs the receive loop until ctx is done: it reads the node's stream
// from the stored cursor, applies commits, joins rooms from Welcomes,
// decrypts messages, and calls fn once per message ID. It reconnects after
// network errors. fn runs on Sync's goroutine; a slow fn slows the loop.
// Run one Sync per Client.
func (c *Client) Sync(ctx context.Context, fn func(Delivery)) error {
	if _, err := c.Whoami(); err != nil {
		return err
	}
	backoff := 200 * time.Millisecond
	for {
		if err := c.drain(ctx, fn); err != nil {
			return err
		}
		if err := c.flush(ctx); err != nil && ctx.Err() == nil && !errors.Is(err, ErrCommitLost) {
			c.mu.Lock()
			c.skipf("background work: %v", err)
			c.mu.Unlock()
		}
		c.mu.Lock()
		since, a := c.cursor, c.api()
		c.mu.Unlock()
		err := c.readStream(ctx, a, "?since="+strconv.FormatUint(since, 10), func(l *clientapi.StreamLine) error {
			if err := c.processLine(ctx, l); err != nil {
				return err
			}
			if err := c.drain(ctx, fn); err != nil {
				return err
			}
			if c.hasWork() {
				return errFlush
			}
			return nil
		})
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, errFlush) {
			continue
		}
		var ae *APIError
		if errors.As(err, &ae) && (ae.Status == http.StatusUnauthorized || ae.Status == http.StatusNotFound) {
			return err
		}
		if err != nil {
			c.mu.Lock()
			c.skipf("stream: %v (retrying)", err)
			c.mu.Unlock()
		}
		if errors.Is(err, ErrStore) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		if backoff < 5*time.Second {
			backoff *= 2
		}
	}
}

var errFlush = errors.New("client: background work pending")

// await processes stream lines until cond holds (checked under the lock
// after each line), the timeout passes or ctx is done. Deliveries it
// processes are queued for Sync.
func (c *Client) await(ctx context.Context, what string, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, c.opts.WaitTimeout)
	defer cancel()
	errMet := errors.New("met")
	for {
		c.mu.Lock()
		met := cond()
		since, a := c.cursor, c.api()
		c.mu.Unlock()
		if met {
			return nil
		}
		err := c.readStream(ctx, a, "?since="+strconv.FormatUint(since, 10), func(l *clientapi.StreamLine) error {
			if err := c.processLine(ctx, l); err != nil {
				return err
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			if cond() {
				return errMet
			}
			return nil
		})
		if errors.Is(err, errMet) {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("client: timed out after %v waiting for %s: is the node connected to the room's other servers?", c.opts.WaitTimeout, what)
		}
		if err != nil && !errors.Is(err, ErrUnreachable) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func marshalComponents(comps []roomstate.ComponentData) ([]byte, error) {
	return roomstate.MarshalComponents(comps)
}

// CatchUp processes the stream from the stored cursor until it has been
// quiet for idle (the node sends its backlog at once, so a quiet stream is
// caught up), or ctx is done. Command-line tools call it before acting, so
// that they act on the room's current epoch. Deliveries it processes stay
// queued for the next Sync.
func (c *Client) CatchUp(ctx context.Context, idle time.Duration) error {
	c.mu.Lock()
	if c.id == nil {
		c.mu.Unlock()
		return ErrNotRegistered
	}
	since, a := c.cursor, c.api()
	c.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	timer := time.AfterFunc(idle, cancel)
	defer timer.Stop()
	err := c.readStream(ctx, a, "?since="+strconv.FormatUint(since, 10), func(l *clientapi.StreamLine) error {
		timer.Stop()
		err := c.processLine(ctx, l)
		timer.Reset(idle)
		return err
	})
	if errors.Is(err, context.Canceled) {
		return nil
	}
	if err == nil {
		return nil
	}
	return err
}
