package node

import (
	"log/slog"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/rhizome-chat/rhizome/dag"
)

// TestInviteQueueBound: notices beyond the queue are dropped and counted,
// never queued without bound.
func TestInviteQueueBound(t *testing.T) {
	n := &Node{metrics: NewMetrics()}
	iv := newInviter(n, slog.New(slog.DiscardHandler))
	for i := range inviteQueue + 1 {
		var room dag.RoomID
		room[0], room[1] = byte(i), byte(i>>8)
		iv.enqueue(inviteJob{room: room})
	}
	var m dto.Metric
	if err := iv.metric.WithLabelValues("sent", "dropped").Write(&m); err != nil {
		t.Fatal(err)
	}
	if got := m.GetCounter().GetValue(); got != 1 {
		t.Fatalf("dropped notices counted: %v, want 1", got)
	}
}
