package handlers

import (
	"testing"

	"teslalink/internal/apperr"
	"teslalink/internal/i18n"
)

// Every wording of the problems table an owner can see has a translation in
// every language: the error pages' headings and texts, and the account
// page's vehicle notes. Codes only the API answers are left out.
func TestProblemWordingIsTranslated(t *testing.T) {
	t.Parallel()
	apiOnly := map[apperr.Code]bool{apperr.InvalidRequest: true, apperr.Unauthenticated: true, apperr.InsufficientScope: true,
		apperr.ScopeNotGranted: true, apperr.LinkRevoked: true, apperr.ReauthRequired: true, apperr.TeslaMisconfigured: true, apperr.TeslaInvalidResponse: true,
		apperr.TokenKeyUnavailable: true, apperr.StoredTokenUnusable: true, apperr.FleetNotRegistered: true,
		apperr.FleetWrongRegion: true, apperr.FleetForbidden: true, apperr.ReturnURLNotAllowed: true,
		apperr.LinkSessionNotLinked: true, apperr.ClaimCodeInvalid: true, apperr.ClaimCodeUsed: true,
		apperr.ClaimCodeExpired: true, apperr.ClaimMismatch: true}
	known := func(s string) bool {
		de, _ := i18n.ByCode("de")
		return s == "" || de.Msg(s) != s
	}
	for code, p := range problems {
		texts := []string{p.Vehicles}
		if !apiOnly[code] {
			// What an owner's error page shows: Heading or else Title,
			// Message or else Detail.
			heading, message := p.Heading, p.Message
			if heading == "" {
				heading = p.Title
			}
			if message == "" {
				message = p.Detail
			}
			texts = append(texts, heading, message)
		}
		for _, s := range texts {
			if !known(s) {
				t.Errorf("%s: %q is in no catalog", code, s)
			}
		}
	}
	for _, s := range []string{vehiclesUnavailable, "No such link.", "Download your data from your account page."} {
		if !known(s) {
			t.Errorf("%q is in no catalog", s)
		}
	}
}
