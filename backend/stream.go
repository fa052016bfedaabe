package backend

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

var prefixDownload = []byte("/download/")

// Upload is the JSON body /upload answers with.
type Upload struct {
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// upload counts and hashes the request body as it streams in, so bodies far
// larger than memory can be checked end to end.
func (h *Handler) upload(ctx *fasthttp.RequestCtx) {
	sum := sha256.New()
	var n int64
	var err error
	if s := ctx.RequestBodyStream(); s != nil {
		n, err = io.Copy(sum, s)
	} else {
		b := ctx.PostBody()
		sum.Write(b)
		n = int64(len(b))
	}
	if err != nil {
		ctx.Error("reading body: "+err.Error(), fasthttp.StatusBadRequest)
		return
	}
	ctx.SetContentType("application/json")
	json.NewEncoder(ctx).Encode(Upload{Bytes: n, SHA256: hex.EncodeToString(sum.Sum(nil))}) //nolint:errcheck // to a buffer
}

// PatternSHA256 returns the SHA-256 of the first n bytes /download/N sends.
func PatternSHA256(n int64) string {
	sum := sha256.New()
	io.Copy(sum, &patternReader{left: n}) //nolint:errcheck // cannot fail
	return hex.EncodeToString(sum.Sum(nil))
}

// patternReader yields left bytes of a fixed non-uniform pattern, so a
// byte lost or duplicated on the way changes the hash.
type patternReader struct {
	off, left int64
}

func (r *patternReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), r.left))
	for i := range n {
		r.off++
		p[i] = byte(r.off*7 + r.off>>9)
	}
	r.left -= int64(n)
	return n, nil
}

// download streams N bytes of the pattern, with a Content-Length, or chunked
// with ?chunked=1.
func (h *Handler) download(ctx *fasthttp.RequestCtx, arg []byte) {
	n, err := strconv.ParseInt(string(arg), 10, 64)
	if err != nil || n < 0 {
		badArg(ctx, "/download/N wants N >= 0")
		return
	}
	ctx.SetContentType("application/octet-stream")
	size := int(n)
	if string(ctx.QueryArgs().Peek("chunked")) == "1" {
		size = -1
	}
	ctx.SetBodyStream(&patternReader{left: n}, size)
}

// sse sends n server-sent events, one every interval: ?n=5&every=100ms.
// Each event is flushed as it is written, as a live stream would be.
func (h *Handler) sse(ctx *fasthttp.RequestCtx) {
	args := ctx.QueryArgs()
	n := 5
	if v := args.Peek("n"); len(v) > 0 {
		var err error
		if n, err = strconv.Atoi(string(v)); err != nil || n < 0 {
			badArg(ctx, "/sse wants n >= 0")
			return
		}
	}
	every := 100 * time.Millisecond
	if v := args.Peek("every"); len(v) > 0 {
		var err error
		if every, err = time.ParseDuration(string(v)); err != nil || every < 0 || every > MaxDelay {
			badArg(ctx, "/sse wants every as a duration such as 100ms")
			return
		}
	}
	ctx.SetContentType("text/event-stream")
	ctx.Response.Header.Set("Cache-Control", "no-cache")
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		for i := range n {
			if i > 0 {
				time.Sleep(every)
			}
			fmt.Fprintf(w, "id: %d\ndata: event %d sent at %d\n\n", i, i, time.Now().UnixMilli())
			if err := w.Flush(); err != nil {
				return
			}
		}
	})
}

// Zeros returns a reader of n zero bytes, for uploads of any size in tests
// and benchmarks.
func Zeros(n int64) io.Reader { return &zeroReader{left: n} }

// ZerosSHA256 returns the SHA-256 of n zero bytes.
func ZerosSHA256(n int64) string {
	sum := sha256.New()
	io.Copy(sum, Zeros(n)) //nolint:errcheck // cannot fail
	return hex.EncodeToString(sum.Sum(nil))
}

type zeroReader struct{ left int64 }

func (z *zeroReader) Read(p []byte) (int, error) {
	if z.left == 0 {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), z.left))
	clear(p[:n])
	z.left -= int64(n)
	return n, nil
}
