package p2p

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// The host's own series, next to libp2p's resource manager series (see
// [HostConfig].Registerer). They are kept by the gater, which the mesh
// shares, so that [NewHost] can register them before any mesh exists.
var (
	blocksDesc = prometheus.NewDesc("rhizome_p2p_blocks_total",
		"Misbehaviour blocks of peers (penalty or graylist), counting each block in a row once.", nil, nil)
	blockedDesc = prometheus.NewDesc("rhizome_p2p_blocked_peers",
		"Peers currently blocked at the gater, by misbehaviour or by the node.", nil, nil)
	refusedDesc = prometheus.NewDesc("rhizome_p2p_streams_refused_total",
		"Inbound streams reset unanswered, by reason.", []string{"reason"}, nil)
)

// gaterMetrics are the counters behind the series.
type gaterMetrics struct {
	blocks  atomic.Uint64
	streams *streamRefusals
}

// gaterCollector exports a gater's series.
type gaterCollector struct{ g *Gater }

// Describe implements prometheus.Collector.
func (c gaterCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- blocksDesc
	ch <- blockedDesc
	ch <- refusedDesc
}

// Collect implements prometheus.Collector.
func (c gaterCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(blocksDesc, prometheus.CounterValue, float64(c.g.metrics.blocks.Load()))
	ch <- prometheus.MustNewConstMetric(blockedDesc, prometheus.GaugeValue, float64(c.g.blockedCount()))
	for r := RefuseStranger; int(r) < len(streamRefusalNames); r++ {
		ch <- prometheus.MustNewConstMetric(refusedDesc, prometheus.CounterValue,
			float64(c.g.metrics.streams.counts[r].Load()), r.String())
	}
}
