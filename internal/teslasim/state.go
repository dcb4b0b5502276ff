package teslasim

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// The simulator's state can be kept in a file (Config.StateFile), so that a
// restarted `web dev` still knows the owners, refresh tokens (with their
// grace), grants and signing keys of yesterday's links. Codes, faults and
// call counters are not kept.

type simState struct {
	Version     int                 `json:"version"`
	ClockOffset time.Duration       `json:"clock_offset"`
	Keys        []stateKey          `json:"keys"`
	Seq         int64               `json:"seq"`
	Families    int64               `json:"families"`
	Fams        []stateFamily       `json:"fams"`
	Refresh     []stateRefresh      `json:"refresh"`
	Access      []stateAccess       `json:"access"`
	Grants      []stateGrant        `json:"grants"`
	Emails      map[string]string   `json:"emails"`
	Domains     map[string][]string `json:"domains"`
}

type stateKey struct {
	DER       []byte `json:"der"`       // PKCS#1 private key
	Published int    `json:"published"` // position in the JWKS, -1: not published
	Current   bool   `json:"current"`
}

type stateFamily struct {
	ID                  int64
	Sub, Client, Region string
	Audience, Nonce     string
	Current, LastUsed   string
	LastUsedAt          time.Time
	Dead                bool
}

type stateRefresh struct {
	Token   string
	Family  int64
	Expires time.Time
}

type stateAccess struct {
	JTI, Sub, Client, Region string
	Seq                      int64
	Partner                  bool
	Aud, Scopes              []string
	Expires                  time.Time
}

type stateGrant struct {
	Sub, Client     string
	Scopes          []string
	AccessValidFrom int64
}

const stateVersion = 1

// saveState writes the state file, atomically; without a StateFile it does
// nothing. Errors are logged: the simulator keeps serving.
func (s *Sim) saveState() {
	if s.cfg.StateFile == "" {
		return
	}
	st := simState{Version: stateVersion, ClockOffset: s.clock.Offset(), Emails: map[string]string{}, Domains: map[string][]string{}}
	s.keys.mu.RLock()
	pos := map[string]int{}
	for i, k := range s.keys.published {
		pos[k.kid] = i
	}
	for kid, k := range s.keys.all {
		p, ok := pos[kid]
		if !ok {
			p = -1
		}
		st.Keys = append(st.Keys, stateKey{DER: x509.MarshalPKCS1PrivateKey(k.key), Published: p, Current: k == s.keys.current})
	}
	s.keys.mu.RUnlock()

	now := s.clock.Now()
	s.mu.Lock()
	st.Seq, st.Families = s.seq, s.families
	fams := map[int64]*family{}
	for tok, r := range s.refresh {
		if now.After(r.expires) {
			continue
		}
		fams[r.fam.id] = r.fam
		st.Refresh = append(st.Refresh, stateRefresh{Token: tok, Family: r.fam.id, Expires: r.expires})
	}
	for _, f := range fams {
		st.Fams = append(st.Fams, stateFamily{ID: f.id, Sub: f.sub, Client: f.client, Region: f.region, Audience: f.audience,
			Nonce: f.nonce, Current: f.current, LastUsed: f.lastUsed, LastUsedAt: f.lastUsedAt, Dead: f.dead})
	}
	for jti, a := range s.access {
		if now.After(a.expires) {
			continue
		}
		st.Access = append(st.Access, stateAccess{JTI: jti, Sub: a.sub, Client: a.client, Region: a.region, Seq: a.seq,
			Partner: a.partner, Aud: a.aud, Scopes: a.scopes, Expires: a.expires})
	}
	for k, g := range s.grants {
		st.Grants = append(st.Grants, stateGrant{Sub: k.sub, Client: k.client, Scopes: g.scopes, AccessValidFrom: g.accessValidFrom})
	}
	for k, v := range s.emails {
		st.Emails[k] = v
	}
	for k, v := range s.domains {
		st.Domains[k] = append([]string(nil), v...)
	}
	s.mu.Unlock()

	b, err := json.Marshal(st)
	if err == nil {
		s.stateMu.Lock()
		tmp := s.cfg.StateFile + ".tmp"
		if err = os.WriteFile(tmp, b, 0o600); err == nil {
			err = os.Rename(tmp, s.cfg.StateFile)
		}
		s.stateMu.Unlock()
	}
	if err != nil {
		s.log.Error("teslasim: cannot save state", "file", filepath.Base(s.cfg.StateFile), "err", err)
	}
}

// loadState reads the state file into a new Sim; a missing file is a fresh start.
func (s *Sim) loadState() error {
	b, err := os.ReadFile(s.cfg.StateFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("teslasim: read state: %w", err)
	}
	var st simState
	if err := json.Unmarshal(b, &st); err != nil || st.Version != stateVersion {
		return fmt.Errorf("teslasim: state file %s is damaged or from another version; remove it to start afresh", s.cfg.StateFile)
	}
	if len(st.Keys) > 0 {
		ks := &keySet{all: map[string]*signingKey{}}
		published := make([]*signingKey, len(st.Keys))
		for _, k := range st.Keys {
			priv, err := x509.ParsePKCS1PrivateKey(k.DER)
			if err != nil {
				return fmt.Errorf("teslasim: state file %s holds a bad key; remove it to start afresh", s.cfg.StateFile)
			}
			sk, err := newSigningKey(priv)
			if err != nil {
				return err
			}
			ks.all[sk.kid] = sk
			if k.Current {
				ks.current = sk
			}
			if k.Published >= 0 && k.Published < len(published) {
				published[k.Published] = sk
			}
		}
		for _, p := range published {
			if p != nil {
				ks.published = append(ks.published, p)
			}
		}
		if ks.current == nil || len(ks.published) == 0 {
			return fmt.Errorf("teslasim: state file %s has no current key; remove it to start afresh", s.cfg.StateFile)
		}
		s.keys = ks
	}
	if st.ClockOffset > 0 && s.clock.Offset() == 0 {
		s.clock.Advance(st.ClockOffset)
	}
	s.seq, s.families = st.Seq, st.Families
	fams := map[int64]*family{}
	for _, f := range st.Fams {
		fams[f.ID] = &family{id: f.ID, sub: f.Sub, client: f.Client, region: f.Region, audience: f.Audience, nonce: f.Nonce,
			current: f.Current, lastUsed: f.LastUsed, lastUsedAt: f.LastUsedAt, dead: f.Dead}
	}
	for _, r := range st.Refresh {
		if f := fams[r.Family]; f != nil {
			s.refresh[r.Token] = &refreshRec{fam: f, expires: r.Expires}
		}
	}
	for _, a := range st.Access {
		s.access[a.JTI] = &accessRec{sub: a.Sub, client: a.Client, region: a.Region, seq: a.Seq, partner: a.Partner,
			aud: a.Aud, scopes: a.Scopes, expires: a.Expires}
	}
	for _, g := range st.Grants {
		s.grants[grantKey{g.Sub, g.Client}] = &grant{scopes: g.Scopes, accessValidFrom: g.AccessValidFrom}
	}
	for k, v := range st.Emails {
		s.emails[k] = v
	}
	for k, v := range st.Domains {
		s.domains[k] = v
	}
	return nil
}

// persisting saves the state after every request that may change it.
func (s *Sim) persisting(h http.Handler) http.Handler {
	if s.cfg.StateFile == "" {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			s.saveState()
		}
	})
}
