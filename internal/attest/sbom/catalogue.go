package sbom

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// Cataloguer lists the packages in one platform image.
type Cataloguer interface {
	Catalogue(ctx context.Context, img v1.Image) ([]Package, error)
}

// DefaultMaxFileSize is the largest file the default cataloguer reads.
const DefaultMaxFileSize = 256 << 20

// maxManifest bounds a package.json, which is decoded in memory.
const maxManifest = 8 << 20

// Option configures New.
type Option func(*FS)

// WithMaxFileSize makes the cataloguer skip (and log) candidate files larger than n bytes.
func WithMaxFileSize(n int64) Option { return func(c *FS) { c.maxFile = n } }

// WithLogger receives the files the cataloguer skips (too large, malformed), at Warn level.
func WithLogger(l *slog.Logger) Option { return func(c *FS) { c.log = l } }

// WithTempDir is where Go binaries are spooled to be read (default os.TempDir()).
func WithTempDir(dir string) Option { return func(c *FS) { c.tmpDir = dir } }

// FS is the default Cataloguer: it streams the image's flattened filesystem
// (mutate.Extract) once and reads the dpkg and apk databases, Go binaries and npm
// package.json files it meets. Memory stays bounded: databases are parsed as streams, and a
// Go binary is copied to a temporary file for debug/buildinfo. A malformed or oversized file
// is skipped and logged with its path; the rest of the image is still catalogued.
type FS struct {
	maxFile int64
	log     *slog.Logger
	tmpDir  string
}

var _ Cataloguer = (*FS)(nil)

// New returns the default cataloguer.
func New(opts ...Option) *FS {
	c := &FS{maxFile: DefaultMaxFileSize, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Catalogue lists the packages in img, sorted by kind, name, version and location.
func (c *FS) Catalogue(ctx context.Context, img v1.Image) (pkgs []Package, err error) {
	rc := mutate.Extract(img)
	defer rc.Close()
	var spool *os.File // reused for every Go binary
	defer func() {
		if spool != nil {
			spool.Close()
			os.Remove(spool.Name())
		}
	}()
	tr := tar.NewReader(rc)
	br := bufio.NewReaderSize(nil, 64<<10)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("sbom: read image filesystem: %w", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		name := path.Clean("/" + h.Name)
		skip := func(reason string, args ...any) {
			c.log.Warn("sbom: skipped file", append([]any{"path", name, "reason", reason}, args...)...)
		}
		var kind Kind
		switch {
		case name == "/var/lib/dpkg/status",
			path.Dir(name) == "/var/lib/dpkg/status.d" && !strings.HasSuffix(name, ".md5sums"):
			kind = Deb
		case name == "/lib/apk/db/installed":
			kind = Apk
		case isNPMManifest(name):
			kind = NPM
		case h.Mode&0o111 != 0 && h.Size >= int64(len(elfMagic)):
			kind = GoMod // if it is an ELF file
		default:
			continue
		}
		limit := c.maxFile
		if kind == NPM {
			limit = min(limit, maxManifest)
		}
		if h.Size > limit {
			if kind == GoMod && !isELF(tr, br) {
				continue
			}
			skip("larger than the size limit", "size", h.Size, "limit", limit)
			continue
		}
		var found []Package
		switch kind {
		case Deb:
			found, err = ParseDpkgStatus(tr, name == "/var/lib/dpkg/status")
		case Apk:
			found, err = ParseApkInstalled(tr)
		case NPM:
			var p Package
			if p, err = ParseNPMPackage(tr); err == nil {
				found = []Package{p}
			}
		case GoMod:
			br.Reset(tr)
			if magic, _ := br.Peek(len(elfMagic)); !bytes.Equal(magic, elfMagic) {
				continue
			}
			if spool == nil {
				if spool, err = os.CreateTemp(c.tmpDir, "archmirror-sbom-"); err != nil {
					return nil, fmt.Errorf("sbom: %w", err)
				}
			}
			found, err = readGoBinary(spool, br)
			if errors.Is(err, errNotGo) {
				continue
			}
		}
		if err != nil {
			skip(err.Error())
			continue
		}
		for i := range found {
			found[i].Location = name
		}
		pkgs = append(pkgs, found...)
	}
	sortPackages(pkgs)
	return pkgs, nil
}

// isELF reports whether r starts with the ELF magic.
func isELF(r io.Reader, br *bufio.Reader) bool {
	br.Reset(r)
	magic, _ := br.Peek(len(elfMagic))
	return bytes.Equal(magic, elfMagic)
}

var errNotGo = errors.New("not a Go binary")

// readGoBinary copies r into the spool file and reads its Go build information. A file that
// is not a Go binary (or has no build information) is errNotGo; a spool failure is an error.
func readGoBinary(spool *os.File, r io.Reader) ([]Package, error) {
	if err := spool.Truncate(0); err != nil {
		return nil, err
	}
	n, err := io.Copy(io.NewOffsetWriter(spool, 0), r)
	if err != nil {
		return nil, err
	}
	pkgs, err := ParseGoBinary(io.NewSectionReader(spool, 0, n))
	if err != nil {
		return nil, errNotGo
	}
	return pkgs, nil
}
