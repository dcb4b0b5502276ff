package teslasim

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

type authFailure struct {
	status int
	msg    string
}

// bearer verifies the request's bearer token: signature by one of the sim's
// keys, a record of issuing it, expiry, and invalidation (refresh or revoke).
func (s *Sim) bearer(r *http.Request) (*accessRec, *authFailure) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return nil, &authFailure{http.StatusUnauthorized, "missing bearer token"}
	}
	claims, err := s.keys.verifyJWT(strings.TrimSpace(tok))
	if err != nil {
		return nil, &authFailure{http.StatusUnauthorized, "invalid bearer token"}
	}
	jti, _ := claims["jti"].(string)
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.access[jti]
	if rec == nil {
		return nil, &authFailure{http.StatusUnauthorized, "invalid bearer token"}
	}
	if !now.Before(rec.expires) {
		return nil, &authFailure{http.StatusUnauthorized, "token expired"}
	}
	if !rec.partner {
		if g := s.grants[grantKey{rec.sub, rec.client}]; g != nil && rec.seq < g.accessValidFrom {
			return nil, &authFailure{http.StatusUnauthorized, "invalid bearer token"}
		}
	}
	cp := *rec
	return &cp, nil
}

func writeAuthFailure(w http.ResponseWriter, f *authFailure) {
	w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	fleetJSONError(w, f.status, f.msg)
}

type fleetHandler func(w http.ResponseWriter, r *http.Request, rec *accessRec, region string)

// fleetUser wraps a Fleet API user endpoint with the checks Tesla makes:
// token (401), region (421), partner registration (412), scope (403).
func (s *Sim) fleetUser(endpoint, scope string, h fleetHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		region := r.PathValue("region")
		if !knownRegion(region) {
			fleetJSONError(w, http.StatusNotFound, "not found")
			return
		}
		if !s.begin(endpoint, w, r) {
			return
		}
		rec, fail := s.bearer(r)
		if fail != nil {
			writeAuthFailure(w, fail)
			return
		}
		if rec.partner {
			fleetJSONError(w, http.StatusForbidden, "partner tokens cannot call user endpoints")
			return
		}
		// users/region answers in every region: it is how clients find theirs.
		if endpoint != "users.region" && region != rec.region {
			fleetJSONError(w, http.StatusMisdirectedRequest,
				"user out of region, use base URL: "+s.regionBase(r, rec.region))
			return
		}
		if s.cfg.RequirePartnerRegistration && len(s.RegisteredDomains(region)) == 0 {
			fleetJSONError(w, http.StatusPreconditionFailed,
				"Account must be registered in the current region "+s.regionBase(r, region))
			return
		}
		if scope != "" && !hasScope(rec.scopes, scope) {
			fleetJSONError(w, http.StatusForbidden, "Unauthorized missing scopes")
			return
		}
		h(w, r, rec, region)
	}
}

func (s *Sim) ownerFor(rec *accessRec) Owner {
	if o, ok := s.ownerBySub(rec.sub); ok {
		return o
	}
	return Owner{Sub: rec.sub, Region: rec.region}
}

func (s *Sim) handleUsersMe(w http.ResponseWriter, r *http.Request, rec *accessRec, _ string) {
	o := s.ownerFor(rec)
	writeJSON(w, http.StatusOK, map[string]any{"response": map[string]any{
		"email":             o.Email,
		"full_name":         o.Name,
		"profile_image_url": s.base(r) + "/static/profile/" + o.Sub + ".png",
		"vault_uuid":        o.Sub,
	}})
}

func (s *Sim) handleUsersRegion(w http.ResponseWriter, r *http.Request, rec *accessRec, _ string) {
	writeJSON(w, http.StatusOK, map[string]any{"response": map[string]any{
		"region":             rec.region,
		"fleet_api_base_url": s.regionBase(r, rec.region),
	}})
}

func (s *Sim) handleVehicles(w http.ResponseWriter, r *http.Request, rec *accessRec, _ string) {
	vs := s.ownerFor(rec).Vehicles
	page, perPage := atoiDefault(r.URL.Query().Get("page"), 1), atoiDefault(r.URL.Query().Get("per_page"), 100)
	page, perPage = max(page, 1), min(max(perPage, 1), 100)
	start := min((page-1)*perPage, len(vs))
	end := min(start+perPage, len(vs))
	pages := (len(vs) + perPage - 1) / perPage
	list := make([]map[string]any, 0, end-start)
	for _, v := range vs[start:end] {
		list = append(list, map[string]any{
			"id": v.ID, "vehicle_id": v.VehicleID, "vin": v.VIN, "display_name": v.DisplayName,
			"state": v.State, "id_s": strconv.FormatInt(v.ID, 10), "access_type": "OWNER",
			"color": nil, "option_codes": nil, "in_service": false, "calendar_enabled": true,
			"api_version": 81, "granular_access": map[string]bool{"hide_private": false},
			"backseat_token": nil, "backseat_token_updated_at": nil,
		})
	}
	var next, prev any
	if page < pages {
		next = page + 1
	}
	if page > 1 {
		prev = page - 1
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"response": list,
		"pagination": map[string]any{
			"previous": prev, "next": next, "current": page, "per_page": perPage,
			"count": len(vs), "pages": pages,
		},
		"count": len(vs),
	})
}

func atoiDefault(s string, d int) int {
	if n, err := strconv.Atoi(s); err == nil {
		return n
	}
	return d
}

func (s *Sim) handlePartnerAccounts(w http.ResponseWriter, r *http.Request) {
	region := r.PathValue("region")
	if !knownRegion(region) {
		fleetJSONError(w, http.StatusNotFound, "not found")
		return
	}
	if !s.begin("partner_accounts", w, r) {
		return
	}
	rec, fail := s.bearer(r)
	if fail != nil {
		writeAuthFailure(w, fail)
		return
	}
	if !rec.partner {
		fleetJSONError(w, http.StatusForbidden, "a partner token (client_credentials) is required")
		return
	}
	if !hasScope(rec.aud, s.regionBase(r, region)) {
		fleetJSONError(w, http.StatusMisdirectedRequest, "partner token audience does not include "+s.regionBase(r, region))
		return
	}
	var body struct {
		Domain string `json:"domain"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10)).Decode(&body); err != nil {
		fleetJSONError(w, http.StatusBadRequest, "invalid JSON body")
		return
	}
	d := strings.ToLower(strings.TrimSpace(body.Domain))
	if d == "" || strings.ContainsAny(d, "/:@ ?#") {
		fleetJSONError(w, http.StatusBadRequest, "domain must be a bare host name")
		return
	}
	s.mu.Lock()
	if !hasScope(s.domains[region], d) {
		s.domains[region] = append(s.domains[region], d)
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"response": map[string]any{
		"client_id": rec.client, "domain": d, "ou_code": strings.ToUpper(region),
		"created_at": s.clock.Now().UTC().Format("2006-01-02T15:04:05Z"),
	}})
}

func (s *Sim) handleUserinfo(w http.ResponseWriter, r *http.Request) {
	if !s.begin("userinfo", w, r) {
		return
	}
	rec, fail := s.bearer(r)
	if fail == nil && rec.partner {
		fail = &authFailure{http.StatusUnauthorized, "invalid bearer token"}
	}
	if fail != nil {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		teslaError(w, fail.status, "invalid_token", fail.msg)
		return
	}
	if !hasScope(rec.scopes, "openid") {
		teslaError(w, http.StatusForbidden, "insufficient_scope", "openid scope required")
		return
	}
	o := s.ownerFor(rec)
	sub := o.Sub
	if _, ok := s.takeFault(FaultUserinfoSubMismatch, "userinfo"); ok {
		sub = deriveSub("someone-else:" + o.Email)
	}
	writeJSON(w, http.StatusOK, map[string]any{"sub": sub, "email": o.Email, "name": o.Name})
}
