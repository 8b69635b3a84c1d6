package httpapi

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/rhizome-chat/rhizome/clientapi"
	"github.com/rhizome-chat/rhizome/dag"
	"github.com/rhizome-chat/rhizome/node/internal/apierror"
	"github.com/rhizome-chat/rhizome/p2p"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// noSuite is a cipher suite no KeyPackage has (0xFFFF is not assigned): a
// directory request for it learns whether a user exists and consumes
// nothing.
const noSuite = 0xFFFF

// checkPeer checks, for requester, that the peer of a direct message
// exists: a local user in the accounts; a remote one by asking its home
// server (one of servers, else one known from the joined rooms) with a
// KeyPackage request that can match nothing. A home server that refuses to
// answer (it does not know the requesting server from a room yet) cannot
// tell, and the room is created.
func (s *Server) checkPeer(ctx context.Context, requester, peer string, servers []roomstate.Server) error {
	if peer == "" {
		return apierror.New(http.StatusBadRequest, clientapi.CodeBadRequest, "a direct message needs \"peer\": the other user's URI, such as mimi://example.org/u/bob")
	}
	if !roomstate.ValidUserURI(roomstate.URI(peer)) {
		return apierror.New(http.StatusBadRequest, clientapi.CodeBadRequest, "peer %q is not a MIMI user URI such as mimi://example.org/u/bob", peer)
	}
	domain := uriDomain(peer)
	if domain == s.serverName {
		user, ok := s.accounts.LocalUser(peer)
		if !ok {
			return apierror.New(http.StatusNotFound, clientapi.CodeNotFound, "peer %s is not a user of this server", peer)
		}
		exists, err := s.accounts.Exists(user)
		if err != nil {
			return err
		}
		if !exists {
			return apierror.New(http.StatusNotFound, clientapi.CodeNotFound, "peer %s is not a user of this server", peer)
		}
		return nil
	}
	var homes []dag.ServerID
	for _, sv := range servers {
		if sv.Domain == domain {
			homes = append(homes, dag.ServerID(sv.ID))
		}
	}
	if len(homes) == 0 {
		homes = s.rooms.ServersOfDomain(domain)
	}
	if len(homes) == 0 || s.directory == nil {
		return apierror.New(http.StatusNotFound, clientapi.CodeNotFound, "no known server serves domain %q of peer %s: name its server in \"servers\"", domain, peer)
	}
	q := p2p.KeyPackageRequest{Protocol: p2p.MLS10, RequestingUser: requester, TargetUser: peer, CipherSuites: []uint16{noSuite}}
	var errs []error
	// A home server that just started sharing a room with this one may be
	// in the middle of a reconnection (Mesh.RefreshPeers): a failed
	// request is tried again twice, after 200 and 600 ms.
	for attempt := range 3 {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(200*(2*attempt-1)) * time.Millisecond):
			}
		}
		for _, home := range homes {
			pid, err := p2p.PeerID(home.PublicKey())
			if err != nil {
				errs = append(errs, err)
				continue
			}
			km, err := s.directory.FetchKeyPackages(ctx, pid, q)
			var de *p2p.DirectoryError
			if errors.As(err, &de) {
				// The home server answers claims only from servers of a
				// room it knows, which a new direct message is not yet:
				// it cannot tell, so the invite will.
				s.log.Info("direct message: the peer's home server does not answer for it yet", "sys", "api", "peer", peer, "err", err)
				return nil
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if km.UserStatus == p2p.UserUnknown {
				return apierror.New(http.StatusNotFound, clientapi.CodeNotFound, "peer %s does not exist: its home server says userUnknown", peer)
			}
			return nil
		}
	}
	s.log.Warn("direct message: the peer's home server did not answer", "sys", "api", "peer", peer, "err", errors.Join(errs...))
	return apierror.New(http.StatusBadGateway, clientapi.CodeUnavailable, "could not check that peer %s exists: its home server did not answer; retry later", peer)
}
