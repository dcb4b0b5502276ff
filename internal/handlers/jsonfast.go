package handlers

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// appendTokenJSON encodes the token response by hand: it is the hot path,
// and reflection-based encoding was a measurable share of its CPU. The
// output is the same JSON encoding/json produces (tested).
func appendTokenJSON(b []byte, r *tokenResponse) []byte {
	b = append(b, `{"access_token":`...)
	b = appendJSONString(b, r.AccessToken)
	b = append(b, `,"token_type":`...)
	b = appendJSONString(b, r.TokenType)
	b = append(b, `,"expires_at":"`...)
	b = r.ExpiresAt.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","scopes":[`...)
	for i, sc := range r.Scopes {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, sc)
	}
	b = append(b, `],"region":`...)
	b = appendJSONString(b, r.Region)
	b = append(b, `,"fleet_api_base_url":`...)
	b = appendJSONString(b, r.FleetAPIBaseURL)
	b = append(b, `,"link_id":`...)
	b = appendJSONString(b, r.LinkID)
	return append(b, "}\n"...)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string, escaping as encoding/json
// does (including <, > and & for HTML safety, and U+2028/U+2029).
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, `\u202`...)
			b = strconv.AppendInt(b, int64(r&0xf), 16)
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
