package accounts

import (
	"errors"
	"net/http"
	"strings"

	"github.com/dgraph-io/badger/v4"

	"github.com/rhizome-chat/rhizome/clientapi"
	"github.com/rhizome-chat/rhizome/node/internal/apierror"
	"github.com/rhizome-chat/rhizome/node/internal/localdb"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// pfxConsent is the key prefix of consent records (docs/operations.md,
// "What is stored where").
const pfxConsent = "a/"

// MaxConsents bounds the users one user allows to claim its one-time
// KeyPackages.
const MaxConsents = 1000

// consentRecord is one user's explicit permission for another user to claim
// its one-time KeyPackages (key a/<user>/<requester URI>).
type consentRecord struct {
	Created int64 `json:"created"`
}

func consentKey(user, requester string) []byte { return []byte(pfxConsent + user + "/" + requester) }

// CheckConsentUser checks the user URI of a consent request.
func CheckConsentUser(uri string) error {
	if !roomstate.ValidUserURI(roomstate.URI(uri)) {
		return apierror.New(http.StatusBadRequest, clientapi.CodeBadRequest, "user %q is not a MIMI user URI such as mimi://example.org/u/bob", uri)
	}
	return nil
}

// Allow records that requester may claim user's one-time KeyPackages.
func (a *Store) Allow(user, requester string, now int64) error {
	if err := CheckConsentUser(requester); err != nil {
		return err
	}
	return a.db.Update(func(txn *badger.Txn) error {
		var rec consentRecord
		if ok, err := localdb.GetJSON(txn, consentKey(user, requester), &rec); err != nil || ok {
			return err
		}
		n := 0
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pfxConsent + user + "/")})
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		it.Close()
		if n >= MaxConsents {
			return apierror.New(http.StatusConflict, clientapi.CodeConflict, "user already allows %d users, the maximum; withdraw some with DELETE /v1/consent", MaxConsents)
		}
		return localdb.SetJSON(txn, consentKey(user, requester), consentRecord{Created: now})
	})
}

// Disallow withdraws a consent; it reports whether there was one.
func (a *Store) Disallow(user, requester string) (bool, error) {
	found := false
	err := a.db.Update(func(txn *badger.Txn) error {
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

// Consents lists the users user allows, in key order.
func (a *Store) Consents(user string) ([]string, error) {
	out := []string{}
	prefix := pfxConsent + user + "/"
	err := a.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefix)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			out = append(out, strings.TrimPrefix(string(it.Item().Key()), prefix))
		}
		return nil
	})
	return out, err
}

// Consented reports whether user allows requester.
func (a *Store) Consented(user, requester string) (bool, error) {
	ok := false
	err := a.db.View(func(txn *badger.Txn) error {
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
