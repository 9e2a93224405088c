package target

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/archmirror/archmirror/internal/atomicfile"
)

// store is a content-addressed cache of manifests and configs on disk: dir/blobs/<alg>/<hex>.
// Content is checked against its digest when it is written and again when it is read, so a
// corrupt or tampered file is a miss, never a wrong answer.
type store struct {
	dir string
	log *slog.Logger
}

func (s *store) path(d v1.Hash) string {
	// d comes from v1.NewHash: a known algorithm and lowercase hex, so it is a safe path.
	return filepath.Join(s.dir, "blobs", d.Algorithm, d.Hex)
}

// get returns the cached content of d, or false.
func (s *store) get(d v1.Hash) ([]byte, bool) {
	p := s.path(d)
	b, err := os.ReadFile(p)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("manifest cache: read failed", "digest", d.String(), "err", err)
		}
		return nil, false
	}
	if err := verify(d, b); err != nil {
		s.log.Warn("manifest cache: dropping corrupt entry", "digest", d.String(), "err", err)
		_ = os.Remove(p)
		return nil, false
	}
	return b, true
}

// put stores b under d, atomically. Failing to cache is logged, not returned: the caller has
// the content already.
func (s *store) put(d v1.Hash, b []byte) {
	if err := s.write(d, b); err != nil {
		s.log.Warn("manifest cache: write failed", "digest", d.String(), "err", err)
	}
}

func (s *store) write(d v1.Hash, b []byte) error {
	if err := verify(d, b); err != nil {
		return err
	}
	// private to the user, like the rest of the cache: what a private registry holds is
	// nobody else's to read
	p := s.path(d)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(p, b, 0o600)
}

// verify checks that b is the content of d.
func verify(d v1.Hash, b []byte) error {
	h, err := v1.Hasher(d.Algorithm)
	if err != nil {
		return fmt.Errorf("digest %s: %w", d, err)
	}
	h.Write(b)
	if got := hex.EncodeToString(h.Sum(nil)); got != d.Hex {
		return fmt.Errorf("content does not match digest %s (it is %s:%s)", d, d.Algorithm, got)
	}
	return nil
}
