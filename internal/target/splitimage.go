package target

import (
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// SplitImage splits "host/ns/repo:tag", "host/ns/repo@sha256:…" or "oci:dir/repo[:tag]" into the
// target prefix (what New takes as target.registry) ("host/ns", "oci:dir"), the repository, and the tag (default latest) or digest.
func SplitImage(ref string) (prefix, repo, tag string, digest v1.Hash, err error) {
	rest := ref
	if before, d, ok := strings.Cut(rest, "@"); ok {
		if digest, err = v1.NewHash(d); err != nil {
			return "", "", "", v1.Hash{}, fmt.Errorf("%s: %w", ref, err)
		}
		rest = before
	}
	slash := strings.LastIndex(rest, "/")
	if i := strings.LastIndex(rest, ":"); i > slash && !(strings.HasPrefix(rest, "oci:") && i == 3) {
		rest, tag = rest[:i], rest[i+1:]
	}
	if tag == "" && digest.Hex == "" {
		tag = "latest"
	}
	if slash < 0 || slash == len(rest)-1 {
		return "", "", "", v1.Hash{}, fmt.Errorf("%s: want REGISTRY/[NAMESPACE/]REPO[:TAG|@DIGEST] or oci:DIR/REPO[:TAG]", ref)
	}
	return rest[:slash], rest[slash+1:], tag, digest, nil
}
