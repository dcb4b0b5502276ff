package handlers

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"teslalink/internal/apperr"
	"teslalink/internal/db"
	"teslalink/web/templates"
)

func (s *Server) landing(c echo.Context) error {
	if _, err := s.optionalOwner(c); err != nil {
		return err
	}
	return s.render(c, http.StatusOK, templates.Landing(templates.LandingPage{Base: s.base(c, "Connect your Tesla")}))
}

// connectForm shows the scope choice; in relink mode the owner's current
// scopes are pre-checked.
func (s *Server) connectForm(c echo.Context) error {
	o, err := s.optionalOwner(c)
	if err != nil {
		return err
	}
	checked := s.cfg.DefaultScopes
	relink := false
	if o != nil && c.QueryParam("relink") != "" {
		if l, err := s.store.GetLinkByOwner(c.Request().Context(), o.ownerID); err == nil && l.Status != db.StatusRevoked {
			checked, relink = l.GrantedScopes, true
		}
	}
	optional, always := templates.ConnectScopes(s.cfg.OfferedScopes, checked)
	return s.render(c, http.StatusOK, templates.Connect(templates.ConnectPage{Base: s.base(c, "Choose what to share"),
		Scopes: optional, Always: always, Relink: relink}))
}

func (s *Server) account(c echo.Context) error {
	o, l, err := s.ownerLink(c)
	if errors.Is(err, errNotSignedIn) || errors.Is(err, db.ErrNotFound) {
		return c.Redirect(http.StatusSeeOther, "/")
	}
	if err != nil {
		return err
	}
	pageNo, err := accountPageParam(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	page := templates.AccountPage{Base: s.base(c, "Your Tesla connection"), Email: l.OwnerEmail, Name: l.OwnerName,
		Region: templates.RegionName(l.Region), Status: l.Status, StatusReason: statusReason(l),
		Granted: templates.ScopesFor(l.GrantedScopes), LinkedAt: l.LinkedAt, RefreshedAt: l.RefreshedAt, Now: s.now()}
	var missing []string
	for _, sc := range l.RequestedScopes {
		if !slices.Contains(l.GrantedScopes, sc) {
			missing = append(missing, sc)
		}
	}
	page.Missing = templates.ScopesFor(missing)
	usage, err := s.store.LinkUsage(ctx, l.ID)
	if err != nil {
		return err
	}
	for _, u := range usage {
		page.LastUsedBy = append(page.LastUsedBy, templates.Usage{ClientName: u.ClientName, At: u.LastUsedAt})
		if u.LastUsedAt.After(page.LastUsedAt) {
			page.LastUsedAt = u.LastUsedAt
		}
	}
	// Vehicles come from Tesla's Fleet API, which a standard OpenID provider used for trials does not have.
	if l.Status == db.StatusActive && slices.Contains(l.GrantedScopes, "vehicle_device_data") && s.links.ListsVehicles() {
		page.VehiclesShown = true
		var after *db.Link
		page.Vehicles, page.VehiclesNote, after = s.vehicles(ctx, l)
		if after != nil { // listing may have refreshed the token, or found it refused
			page.RefreshedAt, page.Status, page.StatusReason = after.RefreshedAt, after.Status, statusReason(after)
		}
		if page.VehiclesNote == "" && len(page.Vehicles) == 0 {
			page.VehiclesNote = "Tesla lists no vehicles on this account."
		}
	}
	// Read last: listing the vehicles may have refreshed the token.
	activity, err := s.owners.Activity(ctx, o.ownerID, pageNo)
	if err != nil {
		return err
	}
	page.Activity = activityView(activity.Entries, activity.Page, activity.More)
	return s.render(c, http.StatusOK, templates.Account(page))
}

// vehicles asks Tesla for the owner's vehicles; trouble becomes a friendly note.
func (s *Server) vehicles(ctx context.Context, l *db.Link) ([]templates.Vehicle, string, *db.Link) {
	ctx, cancel := context.WithTimeout(ctx, 6*time.Second)
	defer cancel()
	vs, after, err := s.links.Vehicles(ctx, l)
	if err != nil {
		s.log.Warn("vehicle list unavailable", "link_id", l.ID, "error", err)
		if note := problems[apperr.CodeOf(err)].Vehicles; note != "" {
			return nil, note, after
		}
		return nil, vehiclesUnavailable, after
	}
	out := make([]templates.Vehicle, 0, len(vs))
	for _, v := range vs {
		out = append(out, templates.Vehicle{DisplayName: v.DisplayName, VIN: v.VIN, State: v.State})
	}
	return out, "", after
}

func statusReason(l *db.Link) string {
	switch l.Status {
	case db.StatusNeedsReauth:
		return "Tesla no longer accepts this connection (the sign-in expired, or your Tesla password changed). Connect again to continue."
	case db.StatusRevoked:
		return "You removed this connection."
	}
	return ""
}

func (s *Server) revokeConfirm(c echo.Context) error {
	_, l, err := s.ownerLink(c)
	if errors.Is(err, errNotSignedIn) || errors.Is(err, db.ErrNotFound) {
		return c.Redirect(http.StatusSeeOther, "/")
	}
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, templates.RevokeConfirm(templates.RevokeConfirmPage{Base: s.base(c, "Disconnect your Tesla"), Email: l.OwnerEmail}))
}

// revoke deletes the stored tokens, ends the session and points the owner
// to Tesla's own page to remove the app there too.
func (s *Server) revoke(c echo.Context) error {
	o, l, err := s.ownerLink(c)
	if errors.Is(err, errNotSignedIn) || errors.Is(err, db.ErrNotFound) {
		return c.Redirect(http.StatusSeeOther, "/")
	}
	if err != nil {
		return err
	}
	if err := checkCSRF(c, o); err != nil {
		return err
	}
	if _, err := s.links.Revoke(c.Request().Context(), l.ID, "owner"); err != nil {
		return err
	}
	if err := s.sessions.Destroy(c.Request(), c.Response(), o.sess); err != nil {
		return err
	}
	c.Set(ctxOwner, nil)
	back := strings.TrimRight(s.cfg.PublicURL.String(), "/") + "/"
	return s.render(c, http.StatusOK, templates.Revoked(templates.RevokedPage{Base: s.base(c, "Disconnected"),
		TeslaRevokeURL: s.tesla.RevokeConsentURL(back)}))
}

func (s *Server) logout(c echo.Context) error {
	o, err := s.requireOwner(c)
	if errors.Is(err, errNotSignedIn) {
		return c.Redirect(http.StatusSeeOther, "/")
	}
	if err != nil {
		return err
	}
	if err := checkCSRF(c, o); err != nil {
		return err
	}
	if err := s.sessions.Destroy(c.Request(), c.Response(), o.sess); err != nil {
		return err
	}
	c.Set(ctxOwner, nil)
	return s.render(c, http.StatusOK, templates.SignedOut(templates.SignedOutPage{Base: s.base(c, "Signed out")}))
}
