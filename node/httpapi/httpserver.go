package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Options bounds what a client can make an HTTP server spend: time per
// request phase, header bytes and connections. APIOptions and OpsOptions
// make them.
type Options struct {
	readHeaderTimeout time.Duration // from accept to the end of the headers
	bodyTimeout       time.Duration // to read a request body
	writeTimeout      time.Duration // to handle and answer a request; per write for long-lived ones
	idleTimeout       time.Duration // a keep-alive connection between requests
	maxHeaderBytes    int
	maxConns          int // open connections
	maxConnsPerIP     int // open connections per remote address (IPv6 /64); loopback exempt
	// longLived marks requests that stay open (the event stream): their
	// write deadline is renewed at every write instead of set once.
	longLived func(r *http.Request) bool
	// onConnClosed counts connections the limiter closed, by reason.
	onConnClosed func(reason string)
}

// APIOptions are the client API's options from its configuration;
// connsClosed counts the connections the limit closes, by reason.
func APIOptions(l HTTPLimits, connsClosed *prometheus.CounterVec) Options {
	ms := func(v int) time.Duration { return time.Duration(v) * time.Millisecond }
	return Options{
		readHeaderTimeout: ms(l.ReadHeaderTimeoutMS),
		bodyTimeout:       ms(l.BodyTimeoutMS),
		writeTimeout:      ms(l.WriteTimeoutMS),
		idleTimeout:       ms(l.IdleTimeoutMS),
		maxHeaderBytes:    l.MaxHeaderBytes,
		maxConns:          l.MaxConns,
		maxConnsPerIP:     l.MaxConnsPerIP,
		longLived:         func(r *http.Request) bool { return r.Method == http.MethodGet && r.URL.Path == streamPath },
		onConnClosed:      func(reason string) { connsClosed.WithLabelValues(reason).Inc() },
	}
}

// OpsOptions are the operations endpoints' options: the timeouts of l (the
// API's defaults) and a small connection limit.
func OpsOptions(l HTTPLimits) Options {
	ms := func(v int) time.Duration { return time.Duration(v) * time.Millisecond }
	return Options{
		readHeaderTimeout: ms(l.ReadHeaderTimeoutMS), bodyTimeout: ms(l.BodyTimeoutMS),
		writeTimeout: ms(l.WriteTimeoutMS), idleTimeout: ms(l.IdleTimeoutMS),
		maxHeaderBytes: l.MaxHeaderBytes, maxConns: 64, maxConnsPerIP: l.MaxConnsPerIP,
	}
}

// Serve listens on addr before returning, so a busy port is reported at
// start rather than lost in a goroutine, then serves h until stopped, within
// the bounds of o. The returned stop function shuts the server down
// gracefully within ctx.
func Serve(log *slog.Logger, name, addr string, h http.Handler, o Options) (bound string, stop func(ctx context.Context) error, err error) {
	inner, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("listen %s on %s: %w", name, addr, err)
	}
	ln := newConnLimiter(inner, o.maxConns, o.maxConnsPerIP, o.onConnClosed)
	srv := &http.Server{
		Handler:           withDeadlines(h, o),
		ReadHeaderTimeout: o.readHeaderTimeout,
		// No ReadTimeout or WriteTimeout: they would cut the event stream;
		// withDeadlines sets both per request instead.
		IdleTimeout:    o.idleTimeout,
		MaxHeaderBytes: o.maxHeaderBytes,
		ConnState:      ln.connState,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	done := make(chan error, 1)
	go func() {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		done <- err
	}()
	log.Info("listening", "server", name, "addr", ln.Addr().String(), "max_conns", o.maxConns)
	return ln.Addr().String(), func(ctx context.Context) error {
		err := srv.Shutdown(ctx)
		if err != nil {
			srv.Close()
		}
		if serveErr := <-done; serveErr != nil && err == nil {
			err = serveErr
		}
		return err
	}, nil
}

// withDeadlines bounds each request: a request with a body must send it
// within o.bodyTimeout (the read deadline is lifted once the body is read,
// so a slow handler is not cut), and the answer must be written within
// o.writeTimeout after that. A long-lived request instead gets o.writeTimeout for each
// write, so a client that stops reading is dropped while the stream itself
// may last for hours.
func withDeadlines(h http.Handler, o Options) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		write := o.writeTimeout
		if r.Body != nil && r.Body != http.NoBody {
			_ = rc.SetReadDeadline(time.Now().Add(o.bodyTimeout))
			r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
			write += o.bodyTimeout
		}
		if o.longLived != nil && o.longLived(r) {
			h.ServeHTTP(&renewingWriter{ResponseWriter: w, rc: rc, d: o.writeTimeout}, r)
			return
		}
		_ = rc.SetWriteDeadline(time.Now().Add(write))
		h.ServeHTTP(w, r)
	})
}

// deadlineBody lifts the connection's read deadline once the whole body has
// been read.
type deadlineBody struct {
	io.ReadCloser
	rc *http.ResponseController
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) {
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// renewingWriter gives every write and flush of a long-lived answer its own
// write deadline.
type renewingWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
	d  time.Duration
}

func (w *renewingWriter) renew() { _ = w.rc.SetWriteDeadline(time.Now().Add(w.d)) }

func (w *renewingWriter) Write(p []byte) (int, error) {
	w.renew()
	return w.ResponseWriter.Write(p)
}

func (w *renewingWriter) WriteHeader(code int) {
	w.renew()
	w.ResponseWriter.WriteHeader(code)
}

// FlushError flushes with a fresh deadline (http.ResponseController uses it).
func (w *renewingWriter) FlushError() error {
	w.renew()
	return w.rc.Flush()
}

// Unwrap gives http.ResponseController the underlying writer.
func (w *renewingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
