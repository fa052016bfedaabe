package admin

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"path"

	"github.com/valyala/fasthttp"
)

// The dashboard is a static page (HTML, CSS, one script) embedded in the
// binary: no CDN, no build step. The script polls /api/status every second
// and draws one row per backend.
//
//go:embed dashboard
var dashboardFiles embed.FS

// asset is one embedded file, ready to serve.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// assets maps request paths to files: the page at /, the rest under /assets/.
var assets = func() map[string]asset {
	m := map[string]asset{}
	err := fs.WalkDir(dashboardFiles, "dashboard", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := dashboardFiles.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		a := asset{body: body, contentType: mime.TypeByExtension(path.Ext(p)), etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		if a.contentType == "" {
			a.contentType = "application/octet-stream"
		}
		name := path.Base(p)
		if name == "index.html" {
			m["/"] = a
		} else {
			m["/assets/"+name] = a
		}
		return nil
	})
	if err != nil {
		panic("admin: reading the embedded dashboard: " + err.Error())
	}
	return m
}()

// contentSecurityPolicy lets the page load nothing but its own files and
// talk to nothing but its own API.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// serveDashboard returns the handler for an embedded file at path.
func (s *Server) serveDashboard(path string) (fasthttp.RequestHandler, bool) {
	a, ok := assets[path]
	if !ok {
		return nil, false
	}
	return func(ctx *fasthttp.RequestCtx) {
		h := &ctx.Response.Header
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		h.Set(fasthttp.HeaderETag, a.etag)
		if string(ctx.Request.Header.Peek(fasthttp.HeaderIfNoneMatch)) == a.etag {
			ctx.SetStatusCode(fasthttp.StatusNotModified)
			return
		}
		ctx.SetContentType(a.contentType)
		ctx.SetBody(a.body)
	}, true
}
