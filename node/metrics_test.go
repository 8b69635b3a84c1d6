package node_test

import (
	"context"
	"strings"
	"testing"

	"github.com/rhizome-chat/rhizome/node"
)

// TestMetricsResourceManager checks that /metrics carries the libp2p
// resource manager's series, with this node's limits, and the gater's,
// next to Rhizome's others.
func TestMetricsResourceManager(t *testing.T) {
	n, err := node.New(testConfig(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer n.Stop(context.Background())
	code, body := get(t, "http://"+n.OpsAddr()+"/metrics")
	if code != 200 {
		t.Fatalf("metrics = %d", code)
	}
	for _, want := range []string{
		"rhizome_rooms ",
		`libp2p_rcmgr_limit{resource="conns_inbound",scope="system"} 256`,
		`libp2p_rcmgr_limit{resource="fd",scope="system"} 1024`,
		"rhizome_p2p_blocked_peers 0",
		`rhizome_p2p_streams_refused_total{reason="stranger"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
