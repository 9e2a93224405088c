package target

// Image: one v1.Image for both targets, over a manifest already read and verified (from the
// cache when the target has it) and its config; each layer is opened only when it is read.

import (
	"bytes"
	"context"
	"fmt"
	"hash"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// openFunc opens the blob desc describes, for reading its content: verified against its
// digest by the time the reader reports io.EOF.
type openFunc func(desc v1.Descriptor) (io.ReadCloser, error)

// newImage is the image whose manifest is raw (verified against d), reading its config now
// with config and its layers, later, with open.
func newImage(ctx context.Context, d v1.Hash, raw []byte, config fetchFunc, open openFunc) (v1.Image, error) {
	mt, err := manifestMediaType(raw, "")
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", d, err)
	}
	if mt.IsIndex() {
		return nil, fmt.Errorf("manifest %s: an index, not a single-platform image", d)
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", d, err)
	}
	cfg, err := config(ctx, m.Config.Digest)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: config %s: %w", d, m.Config.Digest, err)
	}
	return partial.CompressedToImage(&imageCore{raw: raw, mt: mt, m: m, config: cfg, open: open})
}

// imageCore is what partial.CompressedToImage makes an image of.
type imageCore struct {
	raw    []byte
	mt     types.MediaType
	m      *v1.Manifest
	config []byte
	open   openFunc
}

func (i *imageCore) RawManifest() ([]byte, error)        { return i.raw, nil }
func (i *imageCore) MediaType() (types.MediaType, error) { return i.mt, nil }
func (i *imageCore) RawConfigFile() ([]byte, error)      { return i.config, nil }

// LayerByDigest is the layer (or the config) h of the manifest; nothing is read yet.
func (i *imageCore) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if i.m.Config.Digest == h {
		return &blobLayer{desc: i.m.Config, open: i.open}, nil
	}
	for _, l := range i.m.Layers {
		if l.Digest == h {
			return &blobLayer{desc: l, open: i.open}, nil
		}
	}
	return nil, fmt.Errorf("blob %s: not in the manifest", h)
}

// blobLayer is one blob of the manifest, described by its descriptor.
type blobLayer struct {
	desc v1.Descriptor
	open openFunc
}

func (l *blobLayer) Digest() (v1.Hash, error)            { return l.desc.Digest, nil }
func (l *blobLayer) Size() (int64, error)                { return l.desc.Size, nil }
func (l *blobLayer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }
func (l *blobLayer) Compressed() (io.ReadCloser, error)  { return l.open(l.desc) }

// verifying reads a blob of a known size and digest, and fails instead of reporting io.EOF
// when the content read is not that blob.
type verifying struct {
	rc   io.ReadCloser
	desc v1.Descriptor
	h    hash.Hash
	n    int64
}

func newVerifying(rc io.ReadCloser, desc v1.Descriptor) (io.ReadCloser, error) {
	h, err := v1.Hasher(desc.Digest.Algorithm)
	if err != nil {
		_ = rc.Close()
		return nil, err
	}
	return &verifying{rc: rc, desc: desc, h: h}, nil
}

func (v *verifying) Read(p []byte) (int, error) {
	n, err := v.rc.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if v.n > v.desc.Size {
		return n, fmt.Errorf("blob %s: more than the %d bytes its descriptor says", v.desc.Digest, v.desc.Size)
	}
	if err == io.EOF {
		if v.n != v.desc.Size {
			return n, fmt.Errorf("blob %s: %d bytes, its descriptor says %d", v.desc.Digest, v.n, v.desc.Size)
		}
		if got := fmt.Sprintf("%x", v.h.Sum(nil)); got != v.desc.Digest.Hex {
			return n, fmt.Errorf("blob %s: content does not match its digest (it is %s:%s)", v.desc.Digest, v.desc.Digest.Algorithm, got)
		}
	}
	return n, err
}

func (v *verifying) Close() error { return v.rc.Close() }
