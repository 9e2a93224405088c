package build

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sync/atomic"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
)

func newLayoutWriter(dir string) *layoutWriter {
	return &layoutWriter{dir: dir, done: make(chan struct{})}
}

// layoutWriter receives BuildKit's OCI exporter tar stream and adds its blobs (layers, config,
// manifest) to an OCI layout directory. It leaves index.json alone: listing and tagging the
// image is the publisher's.
type layoutWriter struct {
	dir string

	started  atomic.Bool
	done     chan struct{} // closed when the stream is extracted
	err      error
	manifest v1.Descriptor // the one entry of the tar's index.json
}

// open is the exporter's Output: BuildKit calls it once when the export starts and closes the
// writer at the end.
func (w *layoutWriter) open(map[string]string) (io.WriteCloser, error) {
	if w.started.Swap(true) {
		return nil, errors.New("the OCI exporter opened its output twice")
	}
	p, err := openLayout(w.dir)
	if err != nil {
		w.err = err
		close(w.done)
		return nil, err
	}
	pr, pw := io.Pipe()
	go func() {
		defer close(w.done)
		w.err = w.extract(p, pr)
		if w.err != nil {
			pr.CloseWithError(w.err)
		} else {
			_, _ = io.Copy(io.Discard, pr) // tar padding after the end marker
		}
	}()
	return pw, nil
}

// wait returns the extraction's error once the stream has ended (nil if it never started).
func (w *layoutWriter) wait() error {
	if !w.started.Load() {
		return nil
	}
	<-w.done
	return w.err
}

// openLayout prepares dir to receive blobs: the directory and its oci-layout file. It never
// writes index.json (the publisher owns it, and a layout with blobs but no index.json yet
// reads as empty), so a build cannot clobber a concurrent publish.
func openLayout(dir string) (layout.Path, error) {
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		return "", err
	}
	f, err := os.OpenFile(filepath.Join(dir, "oci-layout"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return layout.Path(dir), nil
	}
	if err != nil {
		return "", err
	}
	_, err = f.WriteString(`{"imageLayoutVersion":"1.0.0"}`)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return layout.Path(dir), err
}

var blobName = regexp.MustCompile(`^blobs/sha256/([0-9a-f]{64})$`)

func (w *layoutWriter) extract(p layout.Path, r io.Reader) error {
	tr := tar.NewReader(r)
	var index []byte
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		switch name := filepath.ToSlash(filepath.Clean(h.Name)); {
		case name == "index.json":
			if index, err = io.ReadAll(io.LimitReader(tr, 1<<20)); err != nil {
				return err
			}
		case blobName.MatchString(name):
			if err := writeBlob(p, blobName.FindStringSubmatch(name)[1], tr); err != nil {
				return err
			}
		}
	}
	if index == nil {
		return errors.New("the exported tar has no index.json")
	}
	var im v1.IndexManifest
	if err := json.Unmarshal(index, &im); err != nil {
		return fmt.Errorf("exported index.json: %w", err)
	}
	if len(im.Manifests) != 1 || !isManifest(string(im.Manifests[0].MediaType)) {
		return fmt.Errorf("exported index.json lists %d entries, want one image manifest", len(im.Manifests))
	}
	w.manifest = im.Manifests[0]
	w.manifest.Annotations = nil
	// every blob the manifest names must now be in the layout (read the manifest blob itself:
	// layout.Path.Image only finds images listed in index.json)
	rc, err := p.Blob(w.manifest.Digest)
	if err != nil {
		return fmt.Errorf("manifest %s is not in the export", w.manifest.Digest)
	}
	defer rc.Close()
	m, err := v1.ParseManifest(rc)
	if err != nil {
		return fmt.Errorf("manifest %s: %w", w.manifest.Digest, err)
	}
	for _, d := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		if _, err := os.Stat(filepath.Join(string(p), "blobs", d.Digest.Algorithm, d.Digest.Hex)); err != nil {
			return fmt.Errorf("blob %s of manifest %s is not in the export", d.Digest, w.manifest.Digest)
		}
	}
	return nil
}

// writeBlob stores a blob whose sha256 is hexDigest, verifying it on the way. It writes a
// temporary file and renames it, because layout.WriteBlob writes in place and skips a file
// that exists whatever its size: an interrupted export, or two jobs writing a shared base layer
// at once, could leave a truncated blob that nothing would ever repair.
func writeBlob(p layout.Path, hexDigest string, r io.Reader) error {
	dir := filepath.Join(string(p), "blobs", "sha256")
	final := filepath.Join(dir, hexDigest)
	if _, err := os.Stat(final); err == nil {
		_, err := io.Copy(io.Discard, r) // content-addressed: what is there is this blob
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".tmp-"+hexDigest[:12]+"-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(tmp, h), r)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != hexDigest {
		return fmt.Errorf("blob sha256:%s: content hashes to sha256:%s", hexDigest, got)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), final)
}

// result checks the layout export against BuildKit's response: for a single-platform build
// containerimage.digest is the image manifest's digest, the one entry of the exported index.json.
func (w *layoutWriter) result(resp map[string]string) (Result, error) {
	if !w.started.Load() {
		return Result{}, errors.New("buildkit exported nothing")
	}
	d := w.manifest.Digest.String()
	if got := resp[exptypes.ExporterImageDigestKey]; got != "" && got != d {
		return Result{}, fmt.Errorf("buildkit returned digest %s but exported manifest %s", got, d)
	}
	return Result{Digest: d, MediaType: string(w.manifest.MediaType), Size: w.manifest.Size}, nil
}
