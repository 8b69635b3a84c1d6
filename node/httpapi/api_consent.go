package httpapi

import (
	"net/http"

	"github.com/rhizome-chat/rhizome/clientapi"
	"github.com/rhizome-chat/rhizome/node/accounts"
	"github.com/rhizome-chat/rhizome/node/internal/apierror"
)

func (s *Server) handleAllow(w http.ResponseWriter, r *http.Request, d *device) {
	var req clientapi.ConsentRequest
	if err := readJSON(w, r, MaxJSONBody, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.accounts.Allow(d.User, req.User, s.now().UnixMilli()); err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("KeyPackage consent given", "sys", "api", "user", s.accounts.UserURI(d.User), "allowed", req.User)
	s.handleListConsents(w, r, d)
}

func (s *Server) handleDisallow(w http.ResponseWriter, r *http.Request, d *device) {
	user := r.URL.Query().Get("user")
	if err := accounts.CheckConsentUser(user); err != nil {
		s.fail(w, r, err)
		return
	}
	found, err := s.accounts.Disallow(d.User, user)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !found {
		s.fail(w, r, apierror.New(http.StatusNotFound, clientapi.CodeNotFound, "user %s is not allowed; GET /v1/consent lists who is", user))
		return
	}
	s.log.Info("KeyPackage consent withdrawn", "sys", "api", "user", s.accounts.UserURI(d.User), "withdrawn", user)
	s.handleListConsents(w, r, d)
}

func (s *Server) handleListConsents(w http.ResponseWriter, r *http.Request, d *device) {
	list, err := s.accounts.Consents(d.User)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, clientapi.Consents{Allowed: list})
}
