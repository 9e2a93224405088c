package target

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"mime"
	"regexp"
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/archmirror/archmirror/internal/platform"
)

// Bounds on what is read into memory. The distribution spec lets registries refuse manifests
// over 4 MiB; image configs are a few KiB in practice.
const (
	maxManifestSize = 4 << 20
	maxConfigSize   = 8 << 20
)

// Annotations that mark an index entry as an attestation (BuildKit's SBOM and provenance
// manifests), not a platform.
const (
	annotationReferenceType = "vnd.docker.reference.type"
	attestationManifest     = "attestation-manifest"
)

// fetchFunc returns the bytes of the blob with digest d, verified against d.
type fetchFunc func(ctx context.Context, d v1.Hash) ([]byte, error)

// manifest is the part of an image index or image manifest that State needs.
type manifest struct {
	MediaType   string            `json:"mediaType"`
	Manifests   []v1.Descriptor   `json:"manifests"`
	Config      *v1.Descriptor    `json:"config"`
	Annotations map[string]string `json:"annotations"`
}

// mediaType is the manifest's own media type, else header (what the target said it is, a
// Content-Type), else what its fields show: OCI makes mediaType optional.
func (m *manifest) mediaType(header string) string {
	if m.MediaType != "" {
		return m.MediaType
	}
	if mt := baseMediaType(header); mt != "" {
		return mt
	}
	switch {
	case m.Manifests != nil:
		return string(types.OCIImageIndex)
	case m.Config != nil:
		return string(types.OCIManifestSchema1)
	}
	return ""
}

// imageConfig is the part of an image config that names its platform.
type imageConfig struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Variant      string `json:"variant"`
}

// describe turns the manifest a tag points at into a State. raw has been verified against d;
// mediaType is what the target said it is (a Content-Type, an index.json descriptor) and may
// be empty. config fetches a single image's config blob; an index never needs it.
func describe(ctx context.Context, log *slog.Logger, d v1.Hash, mediaType string, raw []byte, config fetchFunc) (State, error) {
	var m manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return State{}, fmt.Errorf("manifest %s: %w", d, err)
	}
	mt := m.mediaType(mediaType)
	st := State{Exists: true, Digest: d.String(), MediaType: mt, Manifest: raw}
	if len(m.Annotations) > 0 {
		st.Annotations = maps.Clone(m.Annotations)
	}

	switch types.MediaType(mt) {
	case types.OCIImageIndex, types.DockerManifestList:
		st.Platforms, st.Digests = indexPlatforms(log, d, m.Manifests)
	case types.OCIManifestSchema1, types.DockerManifestSchema2:
		p, ok, err := imagePlatform(ctx, d, &m, config)
		if err != nil {
			return State{}, err
		}
		if ok {
			st.Platforms = []string{p.String()}
			st.Digests = map[string]string{p.String(): d.String()}
		}
	default:
		return State{}, fmt.Errorf("manifest %s: unsupported media type %q", d, mt)
	}
	return st, nil
}

// imagePlatform reads the platform the config of image manifest m (digest d) declares; false
// when it declares none.
func imagePlatform(ctx context.Context, d v1.Hash, m *manifest, config fetchFunc) (platform.Platform, bool, error) {
	if m.Config == nil {
		return platform.Platform{}, false, fmt.Errorf("manifest %s: image manifest without a config", d)
	}
	switch m.Config.MediaType {
	case types.OCIConfigJSON, types.DockerConfigJSON:
	default:
		return platform.Platform{}, false, fmt.Errorf("manifest %s: not an image (config media type %q)", d, m.Config.MediaType)
	}
	b, err := config(ctx, m.Config.Digest)
	if err != nil {
		return platform.Platform{}, false, fmt.Errorf("manifest %s: config %s: %w", d, m.Config.Digest, err)
	}
	p, ok, err := configPlatform(b)
	if err != nil {
		return platform.Platform{}, false, fmt.Errorf("manifest %s: config %s: %w", d, m.Config.Digest, err)
	}
	return p, ok, nil
}

// imageDescriptor describes the image manifest d (raw, verified against d) as an index entry,
// with the platform its config declares. header is the media type the target reported ("" if
// none).
func imageDescriptor(ctx context.Context, d v1.Hash, header string, raw []byte, config fetchFunc) (v1.Descriptor, error) {
	var m manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return v1.Descriptor{}, fmt.Errorf("manifest %s: %w", d, err)
	}
	mt := types.MediaType(m.mediaType(header))
	switch mt {
	case types.OCIManifestSchema1, types.DockerManifestSchema2:
	case types.OCIImageIndex, types.DockerManifestList:
		return v1.Descriptor{}, fmt.Errorf("manifest %s: an index, not a single-platform image (built with attestations?)", d)
	default:
		return v1.Descriptor{}, fmt.Errorf("manifest %s: unsupported media type %q", d, mt)
	}
	p, ok, err := imagePlatform(ctx, d, &m, config)
	if err != nil {
		return v1.Descriptor{}, err
	}
	if !ok {
		return v1.Descriptor{}, fmt.Errorf("manifest %s: its config declares no platform", d)
	}
	return v1.Descriptor{
		MediaType: mt,
		Size:      int64(len(raw)),
		Digest:    d,
		Platform:  &v1.Platform{OS: p.OS, Architecture: p.Arch, Variant: p.Variant},
	}, nil
}

// indexPlatforms lists the platforms of an index's entries, normalised, sorted and without
// duplicates, and each one's entry digest (the first, for a platform listed twice). Attestation
// entries, and entries whose platform is missing or not one archmirror knows, are not platforms.
func indexPlatforms(log *slog.Logger, d v1.Hash, entries []v1.Descriptor) ([]string, map[string]string) {
	var out []string
	digests := map[string]string{}
	for _, e := range entries {
		if e.Annotations[annotationReferenceType] == attestationManifest {
			continue
		}
		if e.Platform == nil {
			log.Debug("index entry without a platform", "index", d.String(), "entry", e.Digest.String())
			continue
		}
		if e.Platform.OS == "unknown" && e.Platform.Architecture == "unknown" {
			continue
		}
		p, err := parsePlatform(e.Platform.OS, e.Platform.Architecture, e.Platform.Variant)
		if err != nil {
			log.Debug("index entry with a platform archmirror does not know", "index", d.String(), "entry", e.Digest.String(), "err", err)
			continue
		}
		out = append(out, p.String())
		if _, dup := digests[p.String()]; !dup {
			digests[p.String()] = e.Digest.String()
		}
	}
	slices.Sort(out)
	return slices.Compact(out), digests
}

// configPlatform reads the platform an image config declares, normalised; false when it
// declares none.
func configPlatform(b []byte) (platform.Platform, bool, error) {
	var c imageConfig
	if err := json.Unmarshal(b, &c); err != nil {
		return platform.Platform{}, false, err
	}
	if c.OS == "" && c.Architecture == "" {
		return platform.Platform{}, false, nil
	}
	p, err := parsePlatform(c.OS, c.Architecture, c.Variant)
	return p, err == nil, err
}

func parsePlatform(os, arch, variant string) (platform.Platform, error) {
	s := os + "/" + arch
	if variant != "" {
		s += "/" + variant
	}
	return platform.Parse(s)
}

// baseMediaType strips parameters ("; charset=utf-8") from a Content-Type.
func baseMediaType(ct string) string {
	if ct == "" {
		return ""
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return ""
	}
	return mt
}

// Repo and tag grammar of the OCI distribution spec. A repo here is one path component: the
// component name under the target's root, never a path.
var (
	repoRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$`)
	tagRE  = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)
)

func checkRef(repo, tag string) error {
	if err := checkRepo(repo); err != nil {
		return err
	}
	if !tagRE.MatchString(tag) {
		return fmt.Errorf("tag %q is not a valid OCI tag", tag)
	}
	return nil
}

func checkRepo(repo string) error {
	if !repoRE.MatchString(repo) {
		return fmt.Errorf("repo %q is not a single lowercase repository component", repo)
	}
	return nil
}

// checkBlobRef checks a repo and a digest asked for.
func checkBlobRef(repo string, d v1.Hash) error {
	if err := checkRepo(repo); err != nil {
		return err
	}
	return checkDigest(d)
}
