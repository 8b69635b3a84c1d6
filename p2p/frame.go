package p2p

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/rhizome-chat/rhizome/internal/tlspl"
)

// Protocol IDs. The version is part of the ID: an incompatible change gets a
// new ID and both are served side by side during a transition
// (docs/protocol.md).
const (
	// SyncProtocol is the pull protocol: heads, get-missing, get-events.
	SyncProtocol = "/rhizome/sync/2.0.0"
	// KeyPackageProtocol is the KeyPackage directory protocol.
	KeyPackageProtocol = "/rhizome/keypackage/1.0.0"
)

// Frame size limits. A request is small (room ID plus a bounded list of event
// IDs); a response carries events up to [ResponseBudget] bytes plus at most
// one event that crosses it, so 2 MiB always suffices (events are capped at
// 64 KiB).
const (
	MaxRequestSize  = 64 << 10
	MaxResponseSize = 2 << 20
	// ResponseBudget is the size after which a server stops adding events
	// to a response.
	ResponseBudget = 1 << 20
)

// ErrFrameTooLarge is returned when a frame announces more bytes than the
// limit for its direction.
var ErrFrameTooLarge = errors.New("p2p: frame too large")

// ErrMalformedFrame is returned when a frame's length prefix is not a minimal
// varint.
var ErrMalformedFrame = errors.New("p2p: malformed frame length")

// A frame is one message on a stream: a QUIC-style varint length in its
// minimal form (RFC 9420, Section 2.1.2, as everywhere in Rhizome's wire
// encodings) followed by that many bytes. Every request and every response is
// exactly one frame; the requester half-closes after its frame and the
// responder closes after its answer.

// writeFrame writes body as one frame.
func writeFrame(w io.Writer, body []byte) error {
	if len(body) > tlspl.MaxVarint {
		return ErrFrameTooLarge
	}
	var hdr [4]byte
	var n int
	switch l := len(body); {
	case l < 1<<6:
		hdr[0], n = byte(l), 1
	case l < 1<<14:
		hdr[0], hdr[1], n = byte(l>>8)|0x40, byte(l), 2
	default:
		hdr[0], hdr[1], hdr[2], hdr[3], n = byte(l>>24)|0x80, byte(l>>16), byte(l>>8), byte(l), 4
	}
	buf := make([]byte, 0, n+len(body))
	buf = append(append(buf, hdr[:n]...), body...)
	_, err := w.Write(buf)
	return err
}

// readFrame reads one frame of at most limit bytes.
func readFrame(r *bufio.Reader, limit int) ([]byte, error) {
	first, err := r.ReadByte()
	if err != nil {
		return nil, err
	}
	var l uint64
	switch first >> 6 {
	case 0:
		l = uint64(first)
	case 1:
		b, err := r.ReadByte()
		if err != nil {
			return nil, unexpectedEOF(err)
		}
		l = uint64(first&0x3f)<<8 | uint64(b)
		if l < 1<<6 {
			return nil, ErrMalformedFrame
		}
	case 2:
		var b [3]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, unexpectedEOF(err)
		}
		l = uint64(first&0x3f)<<24 | uint64(b[0])<<16 | uint64(b[1])<<8 | uint64(b[2])
		if l < 1<<14 {
			return nil, ErrMalformedFrame
		}
	default:
		return nil, ErrMalformedFrame
	}
	if l > uint64(limit) {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, l, limit)
	}
	// The body is read in chunks, the buffer growing as they arrive: a peer
	// that announces a large frame and sends less makes us allocate about
	// what it sent, not what it announced.
	n := int(l)
	body := make([]byte, 0, min(n, frameChunk))
	for len(body) < n {
		k := min(n-len(body), frameChunk)
		body = slices.Grow(body, k)
		if _, err := io.ReadFull(r, body[len(body):len(body)+k]); err != nil {
			return nil, unexpectedEOF(err)
		}
		body = body[:len(body)+k]
	}
	return body, nil
}

// frameChunk is the unit in which readFrame reads a frame's body.
const frameChunk = 16 << 10

func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
