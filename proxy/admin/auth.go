package admin

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/valyala/fasthttp"
)

// With a token configured, every admin request must carry it:
//
//	Authorization: Bearer <token>
//
// which is what Prometheus (authorization: credentials), curl -H and scripts
// send. A browser cannot add that header to a page load, so HTTP Basic with
// the token as the password (any user name) is accepted too: the 401 asks
// for it, the browser prompts once, and the dashboard's own API calls then
// carry it.

// realm names the admin interface in the browser's password prompt.
const realm = `realm="load-balancer admin"`

// checkToken refuses a token that no request can carry: authorized trims
// the white space around the credentials a request sends, as clients and
// proxies on the way may, so a token that begins or ends with some would
// lock everyone out; and clients refuse to send a header with a control
// character (BadTokenByte). The token is a secret: the error does not show
// it, only where its first bad byte is.
func checkToken(token string) error {
	switch {
	case token != "" && strings.TrimSpace(token) == "":
		return errors.New("invalid admin token: only white space, which no request can carry")
	case token != strings.TrimSpace(token):
		return errors.New("invalid admin token: white space at its start or end, which a request's credentials lose: remove it (the token is not shown)")
	}
	if bad := BadTokenByte(token); bad != "" {
		return errors.New("invalid admin token: " + bad)
	}
	return nil
}

// BadTokenByte describes the first control character (a byte below 0x20,
// or 0x7f) in token, by its offset and without showing the token, or
// returns "" when it has none: clients refuse to send such a byte in a
// header, so no request could carry the token. (A space inside is kept, as
// it always was, though RFC 6750's bearer tokens have none.) The binary
// checks its flags with it, to name the flag or the file line.
func BadTokenByte(token string) string {
	for i := 0; i < len(token); i++ {
		if c := token[i]; c < 0x20 || c == 0x7f {
			return fmt.Sprintf("control character 0x%02x at byte offset %d, which no request can carry (the token is not shown)", c, i)
		}
	}
	return ""
}

// authorized reports whether ctx carries the token. Tokens are compared as
// SHA-256 digests in constant time, so neither the content nor the length
// of the token leaks through timing.
func (s *Server) authorized(ctx *fasthttp.RequestCtx) bool {
	if s.tokenSum == nil {
		return true
	}
	h := ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)
	scheme, cred, _ := bytes.Cut(bytes.TrimSpace(h), []byte(" "))
	cred = bytes.TrimSpace(cred)
	switch {
	case bytes.EqualFold(scheme, []byte("Bearer")):
	case bytes.EqualFold(scheme, []byte("Basic")):
		dec := make([]byte, base64.StdEncoding.DecodedLen(len(cred)))
		n, err := base64.StdEncoding.Decode(dec, cred)
		if err != nil {
			return false
		}
		_, password, ok := bytes.Cut(dec[:n], []byte(":"))
		if !ok {
			return false
		}
		cred = password
	default:
		return false
	}
	sum := sha256.Sum256(cred)
	return subtle.ConstantTimeCompare(sum[:], s.tokenSum) == 1
}

// unauthorized answers 401 with both challenges: Bearer for programs, Basic
// so that a browser asks for the token.
func unauthorized(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.Add(fasthttp.HeaderWWWAuthenticate, "Bearer "+realm)
	ctx.Response.Header.Add(fasthttp.HeaderWWWAuthenticate, "Basic "+realm+`, charset="UTF-8"`)
	ctx.Response.Header.Set("Cache-Control", "no-store")
	plain(ctx, fasthttp.StatusUnauthorized, "401 Unauthorized: this admin interface needs Authorization: Bearer <token>\n")
}
