package discover

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/archmirror/archmirror/internal/atomicfile"
	"github.com/archmirror/archmirror/internal/bounded"
)

// httpCache keeps API responses on disk with their ETag, so a repeated run asks upstream
// "changed since?" (If-None-Match) and an unchanged page costs a 304 instead of a 200 — and,
// on GitHub, no rate limit.
//
// Entries are keyed by URL and whether credentials were sent (a private page fetched with a
// token is never served to an anonymous request). Writes are atomic: a temp file renamed over
// the entry. A nil *httpCache is a cache that never hits.
type httpCache struct {
	dir string
}

// cachedPage is one entry on disk.
type cachedPage struct {
	URL    string            `json:"url"`
	Status int               `json:"status"`
	ETag   string            `json:"etag"`
	Header map[string]string `json:"header,omitempty"` // Link, X-Next-Page: what pagination needs
	Body   []byte            `json:"body"`
}

// cachedHeaders are the response headers an entry keeps.
var cachedHeaders = []string{"Link", "X-Next-Page", "X-Total-Pages"}

func newHTTPCache(dir string) *httpCache {
	if dir == "" {
		return nil
	}
	return &httpCache{dir: dir}
}

func (c *httpCache) key(url string, auth bool) string {
	h := sha256.New()
	h.Write([]byte(url))
	if auth {
		h.Write([]byte("\x00auth"))
	} else {
		h.Write([]byte("\x00anon"))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// load returns the entry for url, or nil when there is none or it cannot be read.
func (c *httpCache) load(url string, auth bool) (*cachedPage, error) {
	if c == nil {
		return nil, nil
	}
	path := filepath.Join(c.dir, c.key(url, auth)+".json")
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("http cache: %w", err)
	}
	defer f.Close()
	// An entry holds a body of at most maxBody bytes, base64-encoded in JSON.
	b, err := bounded.Read(f, maxBody*2, "body")
	if err != nil {
		return nil, fmt.Errorf("http cache %s: %w", filepath.Base(path), err)
	}
	var p cachedPage
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("http cache %s: %w", filepath.Base(path), err)
	}
	if p.URL != url || p.ETag == "" {
		return nil, nil
	}
	return &p, nil
}

// store writes the entry for url atomically.
func (c *httpCache) store(url string, auth bool, p *cachedPage) error {
	if c == nil {
		return nil
	}
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return fmt.Errorf("http cache: %w", err)
	}
	p.URL = url
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("http cache: %w", err)
	}
	name := c.key(url, auth) + ".json"
	if err := atomicfile.WriteFile(filepath.Join(c.dir, name), b, 0o600); err != nil {
		return fmt.Errorf("http cache: %w", err)
	}
	return nil
}
