package proxy

import (
	"math/bits"
	"sync"
)

// Bodies read whole (a request body of known length up to
// maxBufferedRequest, a response body up to maxBufferedResponse) go into
// buffers lent by size class: one sync.Pool for each power of two from
// 512 B to 1 MiB. A buffer goes back to the class of its capacity, so a
// body of any size in that range finds a buffer once its size has been
// seen, however rare it is among the others.
//
// bytebufferpool, used before, keeps only buffers up to the 95th
// percentile of the sizes it saw over its last 42,000 returns: when one
// response in fifty was 64 KiB, each of those was read into 64 KiB
// allocated and cleared afresh, 45 garbage collections in 5 s at 45,000
// requests a second.

const (
	minBodyClass = 9  // the smallest buffer, 512 B
	maxBodyClass = 20 // the largest, 1 MiB: maxBufferedRequest and maxBufferedResponse
)

// bodyBuf is a buffer from bodyBufs; B holds the body.
type bodyBuf struct{ B []byte }

// bodyBufs lends the buffers, one pool per size class.
var bodyBufs [maxBodyClass - minBodyClass + 1]sync.Pool

// bodyClass is the index in bodyBufs of the class whose buffers hold n
// bytes, for n up to 1<<maxBodyClass.
func bodyClass(n int) int {
	if n <= 1<<minBodyClass {
		return 0
	}
	return bits.Len(uint(n-1)) - minBodyClass
}

// getBodyBuf returns a buffer whose B is n bytes long, its content
// whatever the buffer last held. A body longer than the largest class gets
// a buffer of its own, which putBodyBuf drops.
func getBodyBuf(n int) *bodyBuf {
	if n > 1<<maxBodyClass {
		return &bodyBuf{B: make([]byte, n)}
	}
	c := bodyClass(n)
	if b, _ := bodyBufs[c].Get().(*bodyBuf); b != nil {
		b.B = b.B[:n]
		return b
	}
	return &bodyBuf{B: make([]byte, n, 1<<(c+minBodyClass))}
}

// putBodyBuf gives b back for another body; the caller must not use it
// again.
func putBodyBuf(b *bodyBuf) {
	size := cap(b.B)
	if size < 1<<minBodyClass || size > 1<<maxBodyClass || size&(size-1) != 0 {
		return // not from a class
	}
	b.B = b.B[:0]
	bodyBufs[bodyClass(size)].Put(b)
}
