package cmd

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/rhizome-chat/rhizome/clientapi"
	"github.com/rhizome-chat/rhizome/node/nodetest"
)

// TestAdminRoomsCommands lists, leaves and purges a room through rhizome
// admin rooms against a real node.
func TestAdminRoomsCommands(t *testing.T) {
	dir := t.TempDir()
	n := nodetest.Start(t, nodetest.Options{Dir: dir})
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	post := func(path, token string, v any, out any) {
		t.Helper()
		body, _ := json.Marshal(v)
		req, _ := http.NewRequest("POST", "http://"+n.APIAddr()+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("POST %s: %d", path, resp.StatusCode)
		}
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	var reg struct{ Token string }
	post("/v1/register", "", map[string]string{"user": "alice", "device": "phone", "signature_key": base64.StdEncoding.EncodeToString(pub)}, &reg)
	var room struct{ Room string }
	post("/v1/rooms", reg.Token, map[string]string{"name": "Club"}, &room)

	var listed clientapi.AdminRoom
	runJSON(t, &listed, "admin", "rooms", "list", "--data-dir", dir)
	if listed.Room != room.Room || listed.Name != "Club" || listed.How != "created" || len(listed.LocalParticipants) != 1 {
		t.Fatalf("listed %+v", listed)
	}
	code, out, _ := run(t, "admin", "rooms", "list", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, room.Room) || !strings.Contains(out, "mimi://a.test/u/alice") {
		t.Fatalf("list: exit %d, %q", code, out)
	}
	if code, out, _ := run(t, "admin", "rooms", "leave", strings.TrimPrefix(room.Room, "!"), "--data-dir", dir); code != 0 || !strings.Contains(out, "Left room") {
		t.Fatalf("leave: exit %d, %q", code, out)
	}
	if code, out, _ := run(t, "admin", "rooms", "list", "--data-dir", dir); code != 0 || !strings.Contains(out, "No rooms.") {
		t.Fatalf("list after leave: exit %d, %q", code, out)
	}
	if code, _, errOut := run(t, "admin", "rooms", "leave", room.Room, "--data-dir", dir); code == 0 || !strings.Contains(errOut, "not joined") {
		t.Fatalf("second leave: exit %d, %q", code, errOut)
	}
	if code, out, _ := run(t, "admin", "rooms", "purge", room.Room, "--data-dir", dir); code != 0 || !strings.Contains(out, "Purged room") {
		t.Fatalf("purge: exit %d, %q", code, out)
	}
	if code, _, errOut := run(t, "admin", "rooms", "purge", "--data-dir", dir); code == 0 || !strings.Contains(errOut, "ROOM") {
		t.Fatalf("purge without a room: exit %d, %q", code, errOut)
	}
}
