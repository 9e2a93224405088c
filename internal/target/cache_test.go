package target

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// The manifest cache is the user's alone, whatever the umask: directories 0700, files 0600.
func TestCacheIsPrivate(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "cache")
	s := &store{dir: dir, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	b := []byte(`{"schemaVersion":2}`)
	d, _, err := v1.SHA256(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.write(d, b); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{
		dir:                                   os.ModeDir | 0o700,
		filepath.Join(dir, "blobs"):           os.ModeDir | 0o700,
		filepath.Join(dir, "blobs", "sha256"): os.ModeDir | 0o700,
		s.path(d):                             0o600,
	} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), want)
		}
	}
}
