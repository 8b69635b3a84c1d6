package node

import (
	"encoding/json"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the node's Prometheus metrics. Each subsystem updates its own;
// they are served on the metrics listener at /metrics.
type Metrics struct {
	Registry *prometheus.Registry

	// EventsStored counts events made durable, by room kind of arrival
	// ("local" from a client, "peer" from another server).
	EventsStored *prometheus.CounterVec
	// EventsRejected counts rejected peer or client input by reason.
	EventsRejected *prometheus.CounterVec
	// Rooms is the number of rooms this node replicates.
	Rooms prometheus.Gauge
	// Peers is the number of connected federation peers.
	Peers prometheus.Gauge
	// ClientStreams is the number of open client event streams.
	ClientStreams prometheus.Gauge
	// APIRateLimited counts client API requests answered 429, by bucket
	// (device, user, room, register_ip).
	APIRateLimited *prometheus.CounterVec
	// APIConnsClosed counts client API connections the connection limit
	// closed, by reason (per_ip, full, evicted).
	APIConnsClosed *prometheus.CounterVec
}

// NewMetrics creates the node's metrics on a fresh registry, with the Go
// runtime and process collectors.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		EventsStored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "rhizome", Name: "events_stored_total", Help: "Events made durable, by source.",
		}, []string{"source"}),
		EventsRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "rhizome", Name: "events_rejected_total", Help: "Rejected events, by reason.",
		}, []string{"reason"}),
		Rooms:         prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "rhizome", Name: "rooms", Help: "Rooms replicated by this node."}),
		Peers:         prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "rhizome", Name: "peers", Help: "Connected federation peers."}),
		ClientStreams: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "rhizome", Name: "client_streams", Help: "Open client event streams."}),
		APIRateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "rhizome", Name: "api_rate_limited_total", Help: "Client API requests refused with 429, by bucket.",
		}, []string{"bucket"}),
		APIConnsClosed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "rhizome", Name: "api_conns_closed_total", Help: "Client API connections closed by the connection limit, by reason.",
		}, []string{"reason"}),
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.EventsStored, m.EventsRejected, m.Rooms, m.Peers, m.ClientStreams, m.APIRateLimited, m.APIConnsClosed)
	return m
}

// opsHandler serves /metrics, /healthz (the process is up) and /readyz
// (every component started; 503 while starting or stopping).
func opsHandler(m *Metrics, lc *lifecycle) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		ready, names := lc.status()
		w.Header().Set("Content-Type", "application/json")
		if !ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(w).Encode(map[string]any{"ready": ready, "components": names})
	})
	return mux
}
