package target

// What the registry and the layout share about referrers: checking an artifact manifest
// before it is attached, the descriptor a referrers listing shows for a manifest, and the
// referrers tag schema's fallback index (its tag, and adding an entry to it).

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// emptyConfig is the media type of the OCI empty descriptor ({}), the config of an artifact
// that has none; such a manifest must carry its artifactType itself.
const emptyConfig = "application/vnd.oci.empty.v1+json"

// artifact is a manifest to attach, checked: what the listing shows for it, its subject, the
// blobs it references and those the caller gave.
type artifact struct {
	raw     []byte
	desc    v1.Descriptor // as a referrers listing shows it
	subject v1.Hash
	refs    []v1.Descriptor    // config and layers, each digest once
	given   map[v1.Hash][]byte // blobs by digest, each one of refs
}

// parseArtifact checks raw, an OCI image manifest with a subject, and blobs, the content of
// some of what it references (a blob it does not reference, or whose size is not the one
// the manifest says, is an error).
func parseArtifact(raw []byte, blobs [][]byte) (*artifact, error) {
	if len(raw) > maxManifestSize {
		return nil, fmt.Errorf("manifest: larger than %d bytes", maxManifestSize)
	}
	var m v1.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if m.SchemaVersion != 2 {
		return nil, fmt.Errorf("manifest: schemaVersion %d, want 2", m.SchemaVersion)
	}
	if m.MediaType != "" && m.MediaType != types.OCIManifestSchema1 {
		return nil, fmt.Errorf("manifest: media type %q, want %s", m.MediaType, types.OCIManifestSchema1)
	}
	if m.Subject == nil {
		return nil, fmt.Errorf("manifest: no subject")
	}
	if m.Config.Digest.Hex == "" || m.Config.MediaType == "" {
		return nil, fmt.Errorf("manifest: no config (an artifact without one has the empty descriptor)")
	}
	if m.Config.MediaType == emptyConfig && m.ArtifactType == "" {
		return nil, fmt.Errorf("manifest: no artifactType (one whose config is the empty descriptor must have one)")
	}
	desc, _, err := referrerDescriptor(raw)
	if err != nil {
		return nil, err
	}
	a := &artifact{raw: raw, desc: desc, subject: m.Subject.Digest, given: map[v1.Hash][]byte{}}
	sizes := map[v1.Hash]int64{}
	for _, r := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		if _, dup := sizes[r.Digest]; dup {
			continue
		}
		sizes[r.Digest] = r.Size
		a.refs = append(a.refs, r)
	}
	for i, b := range blobs {
		d, size, err := v1.SHA256(bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		want, ok := sizes[d]
		switch {
		case !ok:
			return nil, fmt.Errorf("blob %d (%s): the manifest does not reference it", i, d)
		case size != want:
			return nil, fmt.Errorf("blob %s: %d bytes, the manifest says %d", d, size, want)
		}
		a.given[d] = b
	}
	return a, nil
}

// parseArtifacts checks every artifact; an error names the one at fault (": <digest>: …").
func parseArtifacts(arts []Artifact) ([]*artifact, error) {
	as := make([]*artifact, len(arts))
	for i, art := range arts {
		a, err := parseArtifact(art.Manifest, art.Blobs)
		if err != nil {
			d, _, _ := v1.SHA256(bytes.NewReader(art.Manifest))
			return nil, fmt.Errorf("@%s: %w", d, err)
		}
		as[i] = a
	}
	return as, nil
}

// bySubject groups artifacts by subject, in the order the subjects first appear.
func bySubject(as []*artifact) [][]*artifact {
	var out [][]*artifact
	at := map[v1.Hash]int{}
	for _, a := range as {
		i, ok := at[a.subject]
		if !ok {
			i = len(out)
			at[a.subject] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], a)
	}
	return out
}

func descriptors(as []*artifact) []v1.Descriptor {
	out := make([]v1.Descriptor, len(as))
	for i, a := range as {
		out[i] = a.desc
	}
	return out
}

// referrerDescriptor is what a referrers listing shows for raw, an image manifest or index
// (verified against its digest by the caller): its media type, digest and size, its
// artifactType (else its config's media type), its annotations; and its subject, or nil.
func referrerDescriptor(raw []byte) (v1.Descriptor, *v1.Descriptor, error) {
	var m struct {
		MediaType    types.MediaType `json:"mediaType"`
		ArtifactType string          `json:"artifactType"`
		Config       *struct {
			MediaType string `json:"mediaType"`
		} `json:"config"`
		Manifests   json.RawMessage   `json:"manifests"`
		Subject     *v1.Descriptor    `json:"subject"`
		Annotations map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return v1.Descriptor{}, nil, fmt.Errorf("manifest: %w", err)
	}
	d, size, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return v1.Descriptor{}, nil, err
	}
	mt := m.MediaType
	if mt == "" {
		mt = types.OCIManifestSchema1
		if m.Manifests != nil {
			mt = types.OCIImageIndex
		}
	}
	desc := v1.Descriptor{MediaType: mt, Digest: d, Size: size, ArtifactType: m.ArtifactType}
	if desc.ArtifactType == "" && m.Config != nil {
		desc.ArtifactType = m.Config.MediaType
	}
	if len(m.Annotations) > 0 {
		desc.Annotations = maps.Clone(m.Annotations)
	}
	return desc, m.Subject, nil
}

// checkDigest refuses a digest that is not a well-formed sha256 one (it names files in a
// layout, and paths in a registry's API).
func checkDigest(d v1.Hash) error {
	if _, err := v1.NewHash(d.String()); err != nil {
		return fmt.Errorf("digest %q: %w", d.String(), err)
	}
	return nil
}

// sortReferrers orders a listing by digest and drops repeated digests: registries list in
// any order, and a fallback index written by several tools may repeat an entry.
func sortReferrers(descs []v1.Descriptor) []v1.Descriptor {
	slices.SortStableFunc(descs, func(a, b v1.Descriptor) int { return cmp.Compare(a.Digest.String(), b.Digest.String()) })
	descs = slices.CompactFunc(descs, func(a, b v1.Descriptor) bool { return a.Digest == b.Digest })
	if descs == nil {
		descs = []v1.Descriptor{}
	}
	return descs
}

// fallbackTag is the referrers tag schema's tag for subject d: "sha256-<hex>".
func fallbackTag(d v1.Hash) string { return d.Algorithm + "-" + d.Hex }

// fallbackEntries reads the descriptors of a fallback index (nil raw: none yet).
func fallbackEntries(raw []byte) ([]v1.Descriptor, error) {
	if raw == nil {
		return nil, nil
	}
	var im v1.IndexManifest
	if err := json.Unmarshal(raw, &im); err != nil {
		return nil, err
	}
	return im.Manifests, nil
}

// addEntries returns the fallback index raw (nil: there is none yet) with descs added, or false
// when it lists every desc's digest already. Every other field and entry is kept as it is (other
// tools' entries and annotations are theirs), and entries are sorted by digest so that two
// writers adding the same set write the same index.
func addEntries(raw []byte, descs []v1.Descriptor) ([]byte, bool, error) {
	doc := map[string]json.RawMessage{}
	if raw != nil {
		if err := json.Unmarshal(raw, &doc); err != nil {
			return nil, false, err
		}
	}
	var entries []json.RawMessage
	if m, ok := doc["manifests"]; ok && string(m) != "null" {
		if err := json.Unmarshal(m, &entries); err != nil {
			return nil, false, fmt.Errorf("manifests: %w", err)
		}
	}
	digestOf := func(e json.RawMessage) string {
		var d struct {
			Digest string `json:"digest"`
		}
		_ = json.Unmarshal(e, &d) // an entry without a digest sorts first and stays
		return d.Digest
	}
	listed := map[string]bool{}
	for _, e := range entries {
		listed[digestOf(e)] = true
	}
	added := false
	for _, desc := range descs {
		if listed[desc.Digest.String()] {
			continue
		}
		ours, err := json.Marshal(desc)
		if err != nil {
			return nil, false, err
		}
		entries = append(entries, ours)
		listed[desc.Digest.String()] = true
		added = true
	}
	if !added {
		return raw, false, nil
	}
	var err error
	slices.SortStableFunc(entries, func(a, b json.RawMessage) int { return strings.Compare(digestOf(a), digestOf(b)) })
	if doc["manifests"], err = json.Marshal(entries); err != nil {
		return nil, false, err
	}
	if _, ok := doc["schemaVersion"]; !ok {
		doc["schemaVersion"] = json.RawMessage(`2`)
	}
	if _, ok := doc["mediaType"]; !ok {
		doc["mediaType"] = json.RawMessage(`"` + types.OCIImageIndex + `"`)
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return nil, false, err
	}
	if len(out) > maxManifestSize {
		return nil, false, fmt.Errorf("the index would be larger than %d bytes", maxManifestSize)
	}
	return out, true, nil
}

// registryLocks serialises, in this process, the writes to a registry that must not overlap:
// the updates and reads of one fallback tag ("host/repo:sha256-<hex>"), and the uploads of one
// blob to one repo ("host/repo@sha256:<hex>"; distribution writes a blob's link file in place,
// and a HEAD that reads it half-written is a 500). It is package state, unlike everything else
// here, on purpose: two targets of one process on the same registry (a run and a serve loop,
// or a test's two instances) must exclude each other too, and only the process sees both.
var registryLocks = keyedMutex{held: map[string]*keyedLock{}}

// keyedMutex is a set of mutexes by key, each held or waited for by someone, or gone.
type keyedMutex struct {
	mu   sync.Mutex
	held map[string]*keyedLock
}

type keyedLock struct {
	ch    chan struct{} // a slot: full while held
	users int           // holding or waiting; the entry goes when none are
}

// lock takes key's mutex, waiting until ctx ends, and returns its release.
func (k *keyedMutex) lock(ctx context.Context, key string) (func(), error) {
	k.mu.Lock()
	l, ok := k.held[key]
	if !ok {
		l = &keyedLock{ch: make(chan struct{}, 1)}
		k.held[key] = l
	}
	l.users++
	k.mu.Unlock()

	leave := func() {
		k.mu.Lock()
		if l.users--; l.users == 0 {
			delete(k.held, key)
		}
		k.mu.Unlock()
	}
	select {
	case l.ch <- struct{}{}:
	case <-ctx.Done():
		leave()
		return nil, ctx.Err()
	}
	return func() {
		<-l.ch
		leave()
	}, nil
}
