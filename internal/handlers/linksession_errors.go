package handlers

import (
	"errors"
	"net/http"
	"strings"

	"teslalink/internal/linksession"
)

// linkSessionError maps the link-session service's errors; nil for others.
// The API answers problems; owners opening a session URL see these pages.
func linkSessionError(err error) *appError {
	var inv *linksession.InvalidError
	switch {
	case errors.As(err, &inv):
		return &appError{Status: http.StatusBadRequest, Type: "invalid-request", Title: "Invalid request",
			Detail: inv.Field + " " + inv.Reason + ".", Err: err}
	case errors.Is(err, linksession.ErrNotAllowed):
		return &appError{Status: http.StatusUnprocessableEntity, Type: "return-url-not-allowed", Title: "Return URL not allowed",
			Detail: "return_url " + strings.TrimPrefix(err.Error(), linksession.ErrNotAllowed.Error()+": ") + ".", Err: err}
	case errors.Is(err, linksession.ErrUnknown):
		return &appError{Status: http.StatusNotFound, Type: "not-found", Title: "Not found", Detail: "No such link session.", Err: err}
	case errors.Is(err, linksession.ErrNotLinked):
		return &appError{Status: http.StatusConflict, Type: "link-session-not-linked", Title: "Nothing to claim",
			Detail: "The owner has not finished this link session with a link (it is still open, was denied, or failed).", Err: err}
	case errors.Is(err, linksession.ErrCodeInvalid):
		return &appError{Status: http.StatusForbidden, Type: "claim-code-invalid", Title: "Claim code not valid",
			Detail: "The code is not the one this link session sent to the return URL.", Err: err}
	case errors.Is(err, linksession.ErrCodeUsed):
		return &appError{Status: http.StatusConflict, Type: "claim-code-used", Title: "Claim code already used",
			Detail: "Each claim code works once. Nothing was bound.", Err: err}
	case errors.Is(err, linksession.ErrCodeExpired):
		return &appError{Status: http.StatusGone, Type: "claim-code-expired", Title: "Claim code expired",
			Detail: "A claim code works for 10 minutes after the owner returns. Nothing was bound; start a new link session.", Err: err}
	case errors.Is(err, linksession.ErrClaimMismatch):
		return &appError{Status: http.StatusConflict, Type: "claim-mismatch", Title: "external_ref does not match",
			Detail: "This link session was created for another external_ref. Nothing was bound and the code is spent; " +
				"the session URL may have been forwarded to another user.", Err: err}
	case errors.Is(err, linksession.ErrLinkRevoked):
		return &appError{Status: http.StatusGone, Type: "link-revoked", Title: "Link revoked",
			Detail: "The owner revoked the link before it was claimed. Nothing was bound.", Err: err}
	}
	return nil
}
