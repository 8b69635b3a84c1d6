package node

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/rhizome-chat/rhizome/clientapi"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// pfxConsent is the key prefix of consent records (docs/operations.md,
// "What is stored where").
const pfxConsent = "a/"

// maxConsents bounds the users one user allows to claim its one-time
// KeyPackages.
const maxConsents = 1000

// consentRecord is one user's explicit permission for another user to claim
// its one-time KeyPackages (key a/<user>/<requester URI>).
type consentRecord struct {
	Created int64 `json:"created"`
}

func consentKey(user, requester string) []byte { return []byte(pfxConsent + user + "/" + requester) }

// checkConsentUser checks the user URI of a consent request.
func checkConsentUser(uri string) error {
	if !roomstate.ValidUserURI(roomstate.URI(uri)) {
		return apiErr(http.StatusBadRequest, clientapi.CodeBadRequest, "user %q is not a MIMI user URI such as mimi://example.org/u/bob", uri)
	}
	return nil
}

// allow records that requester may claim user's one-time KeyPackages.
func (a *accounts) allow(user, requester string, now int64) error {
	if err := checkConsentUser(requester); err != nil {
		return err
	}
	return a.db.update(func(txn *badger.Txn) error {
		var rec consentRecord
		if ok, err := getJSON(txn, consentKey(user, requester), &rec); err != nil || ok {
			return err
		}
		n := 0
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pfxConsent + user + "/")})
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		it.Close()
		if n >= maxConsents {
			return apiErr(http.StatusConflict, clientapi.CodeConflict, "user already allows %d users, the maximum; withdraw some with DELETE /v1/consent", maxConsents)
		}
		return setJSON(txn, consentKey(user, requester), consentRecord{Created: now})
	})
}

// disallow withdraws a consent; it reports whether there was one.
func (a *accounts) disallow(user, requester string) (bool, error) {
	found := false
	err := a.db.update(func(txn *badger.Txn) error {
		_, err := txn.Get(consentKey(user, requester))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		found = true
		return txn.Delete(consentKey(user, requester))
	})
	return found, err
}

// consents lists the users user allows, in key order.
func (a *accounts) consents(user string) ([]string, error) {
	out := []string{}
	prefix := pfxConsent + user + "/"
	err := a.db.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefix)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			out = append(out, strings.TrimPrefix(string(it.Item().Key()), prefix))
		}
		return nil
	})
	return out, err
}

// consented reports whether user allows requester.
func (a *accounts) consented(user, requester string) (bool, error) {
	ok := false
	err := a.db.view(func(txn *badger.Txn) error {
		_, err := txn.Get(consentKey(user, requester))
		switch {
		case err == nil:
			ok = true
		case !errors.Is(err, badger.ErrKeyNotFound):
			return err
		}
		return nil
	})
	return ok, err
}

func (n *Node) handleAllow(w http.ResponseWriter, r *http.Request, d *device) {
	var req clientapi.ConsentRequest
	if err := readJSON(w, r, maxJSONBody, &req); err != nil {
		n.fail(w, r, err)
		return
	}
	if err := n.accounts.allow(d.User, req.User, time.Now().UnixMilli()); err != nil {
		n.fail(w, r, err)
		return
	}
	n.log.Info("KeyPackage consent given", "sys", "api", "user", n.accounts.userURI(d.User), "allowed", req.User)
	n.handleListConsents(w, r, d)
}

func (n *Node) handleDisallow(w http.ResponseWriter, r *http.Request, d *device) {
	user := r.URL.Query().Get("user")
	if err := checkConsentUser(user); err != nil {
		n.fail(w, r, err)
		return
	}
	found, err := n.accounts.disallow(d.User, user)
	if err != nil {
		n.fail(w, r, err)
		return
	}
	if !found {
		n.fail(w, r, apiErr(http.StatusNotFound, clientapi.CodeNotFound, "user %s is not allowed; GET /v1/consent lists who is", user))
		return
	}
	n.log.Info("KeyPackage consent withdrawn", "sys", "api", "user", n.accounts.userURI(d.User), "withdrawn", user)
	n.handleListConsents(w, r, d)
}

func (n *Node) handleListConsents(w http.ResponseWriter, r *http.Request, d *device) {
	list, err := n.accounts.consents(d.User)
	if err != nil {
		n.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, clientapi.Consents{Allowed: list})
}
