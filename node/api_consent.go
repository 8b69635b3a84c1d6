package node

import (
	"net/http"
	"time"

	"github.com/rhizome-chat/rhizome/clientapi"
	"github.com/rhizome-chat/rhizome/node/accounts"
	"github.com/rhizome-chat/rhizome/node/internal/apierror"
)

func (n *Node) handleAllow(w http.ResponseWriter, r *http.Request, d *device) {
	var req clientapi.ConsentRequest
	if err := readJSON(w, r, maxJSONBody, &req); err != nil {
		n.fail(w, r, err)
		return
	}
	if err := n.accounts.Allow(d.User, req.User, time.Now().UnixMilli()); err != nil {
		n.fail(w, r, err)
		return
	}
	n.log.Info("KeyPackage consent given", "sys", "api", "user", n.accounts.UserURI(d.User), "allowed", req.User)
	n.handleListConsents(w, r, d)
}

func (n *Node) handleDisallow(w http.ResponseWriter, r *http.Request, d *device) {
	user := r.URL.Query().Get("user")
	if err := accounts.CheckConsentUser(user); err != nil {
		n.fail(w, r, err)
		return
	}
	found, err := n.accounts.Disallow(d.User, user)
	if err != nil {
		n.fail(w, r, err)
		return
	}
	if !found {
		n.fail(w, r, apierror.New(http.StatusNotFound, clientapi.CodeNotFound, "user %s is not allowed; GET /v1/consent lists who is", user))
		return
	}
	n.log.Info("KeyPackage consent withdrawn", "sys", "api", "user", n.accounts.UserURI(d.User), "withdrawn", user)
	n.handleListConsents(w, r, d)
}

func (n *Node) handleListConsents(w http.ResponseWriter, r *http.Request, d *device) {
	list, err := n.accounts.Consents(d.User)
	if err != nil {
		n.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, clientapi.Consents{Allowed: list})
}
