package build

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/moby/buildkit/frontend/dockerfile/dfgitutil"
)

// parseProvenance reads the inputs of a build from the SLSA provenance predicate (v1, or
// v0.2) BuildKit recorded for it; an in-toto statement around the predicate is accepted too.
//
//   - the configSource's git commit (the context, when it is a git URL) → SourceCommit. This
//     is the git object BuildKit pinned, which for an annotated tag is the tag object, not
//     its commit: see peel.
//   - pkg:docker/… dependencies → BaseImages, the reference in docker form without digest
//     ("127.0.0.1:5000/base:latest", "docker.io/library/alpine:3.20") and the digest pulled.
//   - http(s) dependencies that are not git repositories → Artifacts, with their sha256.
//   - runDetails.metadata.startedOn / finishedOn (v0.2: metadata.buildStartedOn / …) →
//     Started, Finished.
//
// Anything else is ignored, build args and the request in particular (they may hold secrets).
// It returns what it could read and an error describing what it could not: a malformed
// entry is left out, not fatal.
func parseProvenance(predicate []byte) (Inputs, error) {
	var in Inputs
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(predicate, &doc); err != nil {
		return in, fmt.Errorf("predicate: %w", err)
	}
	if p, ok := doc["predicate"]; ok && doc["predicateType"] != nil { // a whole statement
		doc = nil
		if err := json.Unmarshal(p, &doc); err != nil {
			return in, fmt.Errorf("statement predicate: %w", err)
		}
	}

	var errs []error
	section := func(v any, path ...string) {
		raw, err := lookup(doc, path...)
		if err == nil && raw != nil {
			err = json.Unmarshal(raw, v)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", strings.Join(path, "."), err))
		}
	}

	var (
		config       material
		deps         []json.RawMessage
		started, end string
	)
	if doc["buildDefinition"] != nil || doc["runDetails"] != nil { // SLSA v1
		section(&config, "buildDefinition", "externalParameters", "configSource")
		section(&deps, "buildDefinition", "resolvedDependencies")
		section(&started, "runDetails", "metadata", "startedOn")
		section(&end, "runDetails", "metadata", "finishedOn")
	} else { // SLSA v0.2
		section(&config, "invocation", "configSource")
		section(&deps, "materials")
		section(&started, "metadata", "buildStartedOn")
		section(&end, "metadata", "buildFinishedOn")
	}

	var err error
	if in.Started, err = parseTime(started); err != nil {
		errs = append(errs, fmt.Errorf("started: %w", err))
	}
	if in.Finished, err = parseTime(end); err != nil {
		errs = append(errs, fmt.Errorf("finished: %w", err))
	}

	ctxGit := gitRef(config.URI)
	var gitDeps []material
	for i, raw := range deps {
		var m material
		if err := json.Unmarshal(raw, &m); err != nil {
			errs = append(errs, fmt.Errorf("dependency %d: %w", i, err))
			continue
		}
		switch {
		case strings.HasPrefix(m.URI, "pkg:docker/"):
			bi, ok, err := baseImage(m)
			if err != nil {
				errs = append(errs, fmt.Errorf("dependency %d: %w", i, err))
			} else if ok && !slices.Contains(in.BaseImages, bi) {
				in.BaseImages = append(in.BaseImages, bi)
			}
		case gitRef(m.URI) != nil:
			gitDeps = append(gitDeps, m)
		case strings.HasPrefix(m.URI, "https://") || strings.HasPrefix(m.URI, "http://"):
			a, err := artifact(m)
			if err != nil {
				errs = append(errs, fmt.Errorf("dependency %d: %w", i, err))
			} else if !slices.Contains(in.Artifacts, a) {
				in.Artifacts = append(in.Artifacts, a)
			}
		}
	}

	if ctxGit != nil {
		commit, err := gitObject(config.Digest)
		if commit == "" && err == nil { // no digest on the configSource: the dependency for it
			for _, m := range gitDeps {
				if g := gitRef(m.URI); g.Remote == ctxGit.Remote && g.Ref == ctxGit.Ref {
					commit, err = gitObject(m.Digest)
					break
				}
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("git context: %w", err))
		}
		in.SourceCommit = commit
	}
	if len(errs) > maxParseErrors {
		errs = append(errs[:maxParseErrors], fmt.Errorf("and %d more", len(errs)-maxParseErrors))
	}
	return in, errors.Join(errs...)
}

// maxParseErrors bounds how many problems parseProvenance describes.
const maxParseErrors = 10

// material is a SLSA v1 resource descriptor, or a v0.2 material or config source.
type material struct {
	URI    string            `json:"uri"`
	Digest map[string]string `json:"digest"`
}

// lookup follows path through nested JSON objects; a missing key is (nil, nil).
func lookup(doc map[string]json.RawMessage, path ...string) (json.RawMessage, error) {
	raw, ok := doc[path[0]]
	if !ok || len(path) == 1 {
		return raw, nil
	}
	if string(raw) == "null" {
		return nil, nil
	}
	var sub map[string]json.RawMessage
	if err := json.Unmarshal(raw, &sub); err != nil {
		return nil, err
	}
	return lookup(sub, path[1:]...)
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339Nano, s)
}

// gitRef parses a git URL as BuildKit's Dockerfile frontend does; nil if it is none.
func gitRef(uri string) *dfgitutil.GitRef {
	if uri == "" {
		return nil
	}
	g, ok, err := dfgitutil.ParseGitRef(uri)
	if !ok || err != nil {
		return nil
	}
	return g
}

// gitObject is the 40-hex git object of a digest set ("" if it has none).
func gitObject(d map[string]string) (string, error) {
	for _, alg := range []string{"gitCommit", "sha1"} {
		if v, ok := d[alg]; ok {
			v = strings.ToLower(v)
			if !isHex(v, 20) {
				return "", fmt.Errorf("%s %q is not a 40-hex git object name", alg, v)
			}
			return v, nil
		}
	}
	if _, ok := d["sha256"]; ok {
		return "", errors.New("a sha256 git repository (only sha1 commits are recorded)")
	}
	return "", nil
}

// baseImage reads a "pkg:docker/NAMESPACE/NAME@VERSION?digest=…&platform=…" dependency (the
// package URL BuildKit writes for an image it pulled). ok is false for what is not a pulled
// image (a blob, a git bundle).
func baseImage(m material) (bi BaseImage, ok bool, err error) {
	rest := strings.TrimPrefix(m.URI, "pkg:docker/")
	rest, _, _ = strings.Cut(rest, "#") // subpath
	path, query, _ := strings.Cut(rest, "?")
	q, err := url.ParseQuery(query)
	if err != nil {
		return bi, false, fmt.Errorf("%s: %w", m.URI, err)
	}
	if q.Has("ref_type") {
		return bi, false, nil
	}
	name, version, _ := strings.Cut(path, "@")
	var segs []string
	for s := range strings.SplitSeq(name, "/") {
		u, err := url.PathUnescape(s)
		if err != nil || u == "" {
			return bi, false, fmt.Errorf("%s: bad name", m.URI)
		}
		segs = append(segs, u)
	}
	if version, err = url.PathUnescape(version); err != nil {
		return bi, false, fmt.Errorf("%s: bad version", m.URI)
	}

	var tag, inRef string
	switch {
	case strings.HasPrefix(version, "sha256:"):
		inRef = version
	case version != "":
		tag = version
	}
	if d := q.Get("digest"); d != "" {
		inRef = d
	}
	ref := strings.Join(segs, "/")
	if tag != "" {
		ref += ":" + tag
	}
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return bi, false, fmt.Errorf("%s: %w", m.URI, err)
	}
	bi.Ref = named.String()

	switch h, ok := m.Digest["sha256"]; {
	case ok:
		if !isHex(h, 32) {
			return bi, false, fmt.Errorf("%s: sha256 %q is not 64 hex digits", m.URI, h)
		}
		bi.Digest = "sha256:" + strings.ToLower(h)
	case inRef != "":
		h, ok := strings.CutPrefix(inRef, "sha256:")
		if !ok || !isHex(h, 32) {
			return bi, false, fmt.Errorf("%s: digest %q is not sha256:<64 hex>", m.URI, inRef)
		}
		bi.Digest = "sha256:" + strings.ToLower(h)
	}
	return bi, true, nil
}

// artifact reads an http(s) dependency: a file BuildKit downloaded (ADD https://…).
func artifact(m material) (Artifact, error) {
	a := Artifact{URI: m.URI}
	if _, err := url.Parse(m.URI); err != nil {
		return a, fmt.Errorf("%q: %w", m.URI, err)
	}
	if h, ok := m.Digest["sha256"]; ok {
		if !isHex(h, 32) {
			return a, fmt.Errorf("%s: sha256 %q is not 64 hex digits", m.URI, h)
		}
		a.SHA256 = "sha256:" + strings.ToLower(h)
	}
	return a, nil
}

func isHex(s string, n int) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == n
}
