package target

import (
	"net/http"
	"strings"
	"time"

	"github.com/archmirror/archmirror/internal/deadline"
)

// deadlines bounds every registry request, so that a registry that takes the connection and
// never answers fails its request instead of blocking the run: the answer's headers must come
// within header, and the whole request (its body read to the end) must be done within
// request. A blob's body may take longer (a big layer, up or down): a blob request instead
// fails when no byte moved, either way, for header. It sits under the retries: each attempt
// has its own deadlines.
func deadlines(header, request time.Duration, next http.RoundTripper) http.RoundTripper {
	return &deadline.Transport{
		Next:      next,
		Noun:      "registry",
		Header:    deadline.Limit{After: header, What: "no answer"},
		Request:   deadline.Limit{After: request, What: "request not done"},
		Streaming: isBlob,
		Idle:      deadline.Limit{After: header, What: "no byte moved"},
	}
}

// isBlob reports whether req is a blob's: its path, or that of the request it was redirected
// from (a blob GET is often redirected to a storage host), has /blobs/ in it.
func isBlob(req *http.Request) bool {
	for r := req; r != nil; {
		if strings.Contains(r.URL.Path, "/blobs/") {
			return true
		}
		if r.Response == nil {
			break
		}
		r = r.Response.Request
	}
	return false
}
