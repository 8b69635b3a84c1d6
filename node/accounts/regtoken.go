package accounts

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/rhizome-chat/rhizome/clientapi"
	"github.com/rhizome-chat/rhizome/node/internal/apierror"
	"github.com/rhizome-chat/rhizome/node/internal/localdb"
)

// Registration tokens: single-use secrets an operator hands to a person so
// that they can register on a node whose api.registration is "token"
// (rhizome admin token create). Like bearer tokens, only their SHA-256 hash
// is stored, under
//
//	g/<sha256(token) hex>        registration token record (JSON)
//
// and a token is consumed in the transaction that creates the user.
const (
	pfxRegToken    = "g/"
	regTokenPrefix = "rhzreg_"
	// maxRegTokens bounds the outstanding registration tokens.
	maxRegTokens = 1000
	// regTokenIDLen is the length of a token's ID: the first hex digits of
	// its hash, enough to name it in a list without revealing it.
	regTokenIDLen   = 16
	maxRegTokenNote = 200
)

// RegToken describes an outstanding registration token (never the secret).
type RegToken struct {
	ID      string `json:"id"`
	Created int64  `json:"created"`           // unix ms
	Expires int64  `json:"expires,omitempty"` // unix ms; 0 never
	Note    string `json:"note,omitempty"`
}

func (t RegToken) expired(now time.Time) bool { return t.Expires != 0 && now.UnixMilli() >= t.Expires }

// IssueRegToken creates a registration token that expires at expires (zero:
// never) and returns it with its record. The token is shown once.
func (a *Store) IssueRegToken(expires time.Time, note string) (string, RegToken, error) {
	if len(note) > maxRegTokenNote {
		return "", RegToken{}, apierror.New(http.StatusBadRequest, clientapi.CodeBadRequest, "note is %d bytes, at most %d", len(note), maxRegTokenNote)
	}
	token, hash, err := newToken(regTokenPrefix)
	if err != nil {
		return "", RegToken{}, err
	}
	now := a.now()
	rec := RegToken{ID: hash[:regTokenIDLen], Created: now.UnixMilli(), Note: note}
	if !expires.IsZero() {
		rec.Expires = expires.UnixMilli()
	}
	err = a.db.Update(func(txn *badger.Txn) error {
		live, err := regTokensTxn(txn, now)
		if err != nil {
			return err
		}
		if len(live) >= maxRegTokens {
			return apierror.New(http.StatusConflict, clientapi.CodeConflict, "%d registration tokens are outstanding, the maximum: revoke some first (rhizome admin token list, revoke)", len(live))
		}
		return localdb.SetJSON(txn, []byte(pfxRegToken+hash), rec)
	})
	if err != nil {
		return "", RegToken{}, err
	}
	return token, rec, nil
}

// RegTokens lists the outstanding registration tokens, oldest first, and
// deletes the expired ones.
func (a *Store) RegTokens() ([]RegToken, error) {
	var out []RegToken
	err := a.db.Update(func(txn *badger.Txn) (err error) {
		out, err = regTokensTxn(txn, a.now())
		return err
	})
	return out, err
}

// regTokensTxn returns the live tokens and deletes the expired ones.
func regTokensTxn(txn *badger.Txn, now time.Time) ([]RegToken, error) {
	var live []RegToken
	var dead [][]byte
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pfxRegToken), PrefetchValues: true})
	for it.Rewind(); it.Valid(); it.Next() {
		var rec RegToken
		if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &rec) }); err != nil {
			it.Close()
			return nil, err
		}
		if rec.expired(now) {
			dead = append(dead, it.Item().KeyCopy(nil))
			continue
		}
		live = append(live, rec)
	}
	it.Close()
	for _, k := range dead {
		if err := txn.Delete(k); err != nil {
			return nil, err
		}
	}
	slices.SortFunc(live, func(a, b RegToken) int { return cmp.Or(cmp.Compare(a.Created, b.Created), strings.Compare(a.ID, b.ID)) })
	return live, nil
}

// RevokeRegToken deletes the token with the given ID; false if none.
func (a *Store) RevokeRegToken(id string) (bool, error) {
	if len(id) != regTokenIDLen || strings.Trim(id, "0123456789abcdef") != "" {
		return false, apierror.New(http.StatusBadRequest, clientapi.CodeBadRequest, "token ID %q is not %d lowercase hex digits as rhizome admin token list shows", id, regTokenIDLen)
	}
	found := false
	err := a.db.Update(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pfxRegToken + id)})
		var keys [][]byte
		for it.Rewind(); it.Valid(); it.Next() {
			keys = append(keys, it.Item().KeyCopy(nil))
		}
		it.Close()
		for _, k := range keys {
			found = true
			if err := txn.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	return found, err
}

// errRegToken is the answer for a missing, unknown, used or expired
// registration token: the same for all, so that it reveals nothing.
func errRegToken(given bool) error {
	if !given {
		return apierror.New(http.StatusForbidden, clientapi.CodeForbidden, "this server registers users with a registration token only: ask its operator for one (rhizome admin token create) and send it as \"registration_token\"")
	}
	return apierror.New(http.StatusForbidden, clientapi.CodeForbidden, "registration_token is unknown, used or expired: each token registers one user; ask the operator for a new one")
}

// consumeRegToken deletes a live registration token in txn, or fails.
func consumeRegToken(txn *badger.Txn, token string, now time.Time) error {
	if !strings.HasPrefix(token, regTokenPrefix) {
		return errRegToken(token != "")
	}
	key := []byte(pfxRegToken + tokenHash(token))
	var rec RegToken
	ok, err := localdb.GetJSON(txn, key, &rec)
	if err != nil {
		return err
	}
	if !ok || rec.expired(now) {
		return errRegToken(true)
	}
	if err := txn.Delete(key); err != nil {
		return fmt.Errorf("%w: consume registration token: %v", localdb.ErrLocalDB, err)
	}
	return nil
}

var errRegistrationClosed = apierror.New(http.StatusForbidden, clientapi.CodeForbidden, "registration is closed on this server (api.registration is \"closed\"); ask its operator")
