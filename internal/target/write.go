package target

import (
	"bytes"
	"encoding/json"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// encodeIndex checks idx and serialises it: the bytes a target stores, and their descriptor.
// Every entry must name a manifest (media type, digest, size): an index is written only over
// children that are already there.
func encodeIndex(idx *v1.IndexManifest) ([]byte, v1.Descriptor, error) {
	if idx == nil {
		return nil, v1.Descriptor{}, fmt.Errorf("index: nil")
	}
	if idx.SchemaVersion != 2 {
		return nil, v1.Descriptor{}, fmt.Errorf("index: schemaVersion %d, want 2", idx.SchemaVersion)
	}
	switch idx.MediaType {
	case types.OCIImageIndex, types.DockerManifestList:
	default:
		return nil, v1.Descriptor{}, fmt.Errorf("index: media type %q is not an image index", idx.MediaType)
	}
	for i, m := range idx.Manifests {
		if m.Digest.Hex == "" || m.Size <= 0 || m.MediaType == "" {
			return nil, v1.Descriptor{}, fmt.Errorf("index: entry %d (%s) lacks a digest, size or media type", i, m.Digest)
		}
		if _, err := v1.NewHash(m.Digest.String()); err != nil {
			return nil, v1.Descriptor{}, fmt.Errorf("index: entry %d: %w", i, err)
		}
	}
	raw, err := json.Marshal(idx)
	if err != nil {
		return nil, v1.Descriptor{}, fmt.Errorf("index: %w", err)
	}
	if len(raw) > maxManifestSize {
		return nil, v1.Descriptor{}, fmt.Errorf("index: larger than %d bytes", maxManifestSize)
	}
	d, size, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	return raw, v1.Descriptor{MediaType: idx.MediaType, Size: size, Digest: d}, nil
}

// manifestMediaType is the media type of raw, a manifest or index: its own mediaType field,
// else header, else what its fields show.
func manifestMediaType(raw []byte, header string) (types.MediaType, error) {
	var m manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return "", err
	}
	mt := types.MediaType(m.mediaType(header))
	if !mt.IsIndex() && !mt.IsImage() {
		return "", fmt.Errorf("unsupported media type %q", mt)
	}
	return mt, nil
}

// rawManifest is a manifest to PUT as it is: remote.Put's Taggable, with the Content-Type.
type rawManifest struct {
	raw       []byte
	mediaType types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.raw, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mediaType, nil }

// guard checks a tag's current digest ("" absent) against the one its writer expects. want
// is the digest about to be written: a tag already there is done (true), whatever expect was,
// so a write repeated after a crash converges instead of conflicting.
func guard(tag, expect, current string, want v1.Hash) (done bool, err error) {
	if current == want.String() {
		return true, nil
	}
	if current != expect {
		return false, &ConflictError{Tag: tag, Expected: expect, Actual: current}
	}
	return false, nil
}
