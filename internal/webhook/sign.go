// Package webhook holds what goes on the wire to the team's webhook
// endpoints: payloads, Standard Webhooks signatures, and an HTTP sender that
// refuses private targets, redirects and slow receivers. Queueing and
// retries are internal/jobs'; storage is internal/db's.
package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"
)

const secretPrefix = "whsec_"

// NewSecret returns a new endpoint secret: "whsec_" + base64 of 32 random
// bytes, the form Standard Webhooks libraries accept.
func NewSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return secretPrefix + base64.StdEncoding.EncodeToString(b)
}

// NewMsgID returns a new webhook-id: unique per event, the same on every
// retry, so receivers can drop duplicates.
func NewMsgID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return "msg_" + base64.RawURLEncoding.EncodeToString(b)
}

// ErrBadSecret means a secret is not "whsec_" + base64.
var ErrBadSecret = errors.New("webhook secret must be whsec_ followed by base64")

func secretKey(secret string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, secretPrefix))
	if err != nil || len(key) == 0 {
		return nil, ErrBadSecret
	}
	return key, nil
}

// Sign returns the webhook-signature header value for a message:
// "v1," + base64(HMAC-SHA256(key, id + "." + unix timestamp + "." + body)).
func Sign(secret, msgID string, ts time.Time, body []byte) (string, error) {
	key, err := secretKey(secret)
	if err != nil {
		return "", err
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(msgID + "." + strconv.FormatInt(ts.Unix(), 10) + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}

// Verify checks a request as a receiver would: one of the space-separated
// signatures in sigHeader must be ours, and the timestamp within tolerance
// of now. Receivers in tests use it; it is also the reference for the
// README's verification steps.
func Verify(secret, msgID, tsHeader, sigHeader string, body []byte, now time.Time, tolerance time.Duration) error {
	unix, err := strconv.ParseInt(tsHeader, 10, 64)
	if err != nil {
		return errors.New("webhook-timestamp is not a unix time")
	}
	ts := time.Unix(unix, 0)
	if tolerance > 0 && (now.Sub(ts) > tolerance || ts.Sub(now) > tolerance) {
		return errors.New("webhook-timestamp is too far from now")
	}
	want, err := Sign(secret, msgID, ts, body)
	if err != nil {
		return err
	}
	for _, sig := range strings.Fields(sigHeader) {
		if hmac.Equal([]byte(sig), []byte(want)) {
			return nil
		}
	}
	return errors.New("no matching signature")
}
