package provenance

import (
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	slsa "github.com/in-toto/attestation/go/predicates/provenance/v1"
	intoto "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/archmirror/archmirror/internal/build"
)

var (
	imageDigest = v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("1", 64)}
	baseDigest  = "sha256:" + strings.Repeat("2", 64)
	artifactSum = strings.Repeat("3", 64)
	commit      = strings.Repeat("a", 40)
)

func testBuild() Build {
	return Build{
		App:          "mattermost",
		Component:    "server",
		Version:      "10.3.1",
		UpstreamTag:  "v10.3.1",
		Platform:     "linux/arm64",
		SourceURL:    "https://github.com/mattermost/mattermost",
		SourceRef:    "refs/tags/v10.3.1",
		SourceCommit: strings.ToUpper(commit), // normalised to lower case
		Dockerfile:   "server/build/Dockerfile",
		Patches:      []string{"unpin-digests", "replace ^FROM ubuntu:.* with FROM ubuntu:24.04"},
		Args: map[string]string{
			"MM_VERSION":   "10.3.1",
			"GITHUB_TOKEN": "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
			"MIRROR":       "https://bob:hunter2@mirror.example/pkgs",
		},
		BaseImages: []build.BaseImage{{Ref: "docker.io/library/ubuntu:24.04", Digest: baseDigest}},
		Artifacts: []build.Artifact{
			{URI: "https://releases.mattermost.com/10.3.1/mattermost-10.3.1-linux-arm64.tar.gz", SHA256: "sha256:" + artifactSum},
			{URI: "https://example.com/unknown.tar.gz"},
		},
		BuilderEndpoint:   "tcp://buildkit-arm64:1234",
		BuilderVersion:    "v0.34.2",
		InvocationID:      "mattermost/server/10.3.1/linux-arm64",
		Started:           time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("CET", 3600)),
		Finished:          time.Date(2026, 1, 2, 2, 14, 5, 500_000_000, time.UTC),
		ArchmirrorVersion: "0.3.0",
	}
}

func decode(t *testing.T, st *intoto.Statement) map[string]any {
	t.Helper()
	b, err := JSON(st)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// get walks a decoded JSON document: "a.b.0.c".
func get(t *testing.T, v any, path string) any {
	t.Helper()
	for _, p := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i >= len(x) {
				t.Fatalf("%s: bad index %q", path, p)
			}
			v = x[i]
		default:
			t.Fatalf("%s: %q is not inside an object or array", path, p)
		}
	}
	return v
}

func TestStatement(t *testing.T) {
	st, err := Statement("ghcr.io/acme/mirror/mattermost-server", imageDigest, testBuild())
	if err != nil {
		t.Fatal(err)
	}
	m := decode(t, st)

	want := map[string]any{
		"_type":                               "https://in-toto.io/Statement/v1",
		"predicateType":                       "https://slsa.dev/provenance/v1",
		"subject.0.name":                      "ghcr.io/acme/mirror/mattermost-server",
		"subject.0.digest.sha256":             imageDigest.Hex,
		"predicate.buildDefinition.buildType": BuildType,
		"predicate.buildDefinition.externalParameters.app":                    "mattermost",
		"predicate.buildDefinition.externalParameters.component":              "server",
		"predicate.buildDefinition.externalParameters.version":                "10.3.1",
		"predicate.buildDefinition.externalParameters.upstreamTag":            "v10.3.1",
		"predicate.buildDefinition.externalParameters.platform":               "linux/arm64",
		"predicate.buildDefinition.externalParameters.source.url":             "https://github.com/mattermost/mattermost",
		"predicate.buildDefinition.externalParameters.source.ref":             "refs/tags/v10.3.1",
		"predicate.buildDefinition.externalParameters.dockerfile":             "server/build/Dockerfile",
		"predicate.buildDefinition.externalParameters.patches.1":              "replace ^FROM ubuntu:.* with FROM ubuntu:24.04",
		"predicate.buildDefinition.externalParameters.buildArgs.MM_VERSION":   "10.3.1",
		"predicate.buildDefinition.externalParameters.buildArgs.GITHUB_TOKEN": "[redacted]",
		"predicate.buildDefinition.externalParameters.buildArgs.MIRROR":       "https://[redacted]@mirror.example/pkgs",
		"predicate.buildDefinition.internalParameters.builderEndpoint":        "tcp://buildkit-arm64:1234",
		"predicate.buildDefinition.internalParameters.archmirrorVersion":      "0.3.0",
		"predicate.buildDefinition.resolvedDependencies.0.name":               "source",
		"predicate.buildDefinition.resolvedDependencies.0.uri":                "git+https://github.com/mattermost/mattermost@refs/tags/v10.3.1",
		"predicate.buildDefinition.resolvedDependencies.0.digest.gitCommit":   commit,
		"predicate.buildDefinition.resolvedDependencies.1.uri":                "docker.io/library/ubuntu:24.04",
		"predicate.buildDefinition.resolvedDependencies.1.digest.sha256":      strings.Repeat("2", 64),
		"predicate.buildDefinition.resolvedDependencies.2.digest.sha256":      artifactSum,
		"predicate.buildDefinition.resolvedDependencies.3.uri":                "https://example.com/unknown.tar.gz",
		"predicate.runDetails.builder.id":                                     "https://archmirror.dev/builder/buildkit@v0.34.2",
		"predicate.runDetails.builder.version.buildkit":                       "v0.34.2",
		"predicate.runDetails.builder.version.archmirror":                     "0.3.0",
		"predicate.runDetails.metadata.invocationId":                          "mattermost/server/10.3.1/linux-arm64",
		"predicate.runDetails.metadata.startedOn":                             "2026-01-02T02:04:05Z",
		"predicate.runDetails.metadata.finishedOn":                            "2026-01-02T02:14:05.500Z",
	}
	for path, w := range want {
		if got := get(t, m, path); got != w {
			t.Errorf("%s = %v, want %v", path, got, w)
		}
	}
	if d := get(t, m, "predicate.buildDefinition.resolvedDependencies.3.digest"); d != nil {
		t.Errorf("artifact without sha256 has digest %v", d)
	}
	b, _ := JSON(st)
	if strings.Contains(string(b), "hunter2") || strings.Contains(string(b), "ghp_") {
		t.Fatalf("secret in provenance: %s", b)
	}

	// The predicate reads back as SLSA v1 provenance and validates.
	pj, err := protojson.Marshal(st.GetPredicate())
	if err != nil {
		t.Fatal(err)
	}
	var p slsa.Provenance
	if err := protojson.Unmarshal(pj, &p); err != nil {
		t.Fatal(err)
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}

	// JSON is stable.
	b2, _ := JSON(st)
	if string(b) != string(b2) {
		t.Fatal("JSON not deterministic")
	}
}

func TestStatementMinimal(t *testing.T) {
	st, err := Statement("oci:./mirror", imageDigest, Build{App: "a", Version: "1", Platform: "linux/amd64", SourceURL: "/src/a"})
	if err != nil {
		t.Fatal(err)
	}
	m := decode(t, st)
	if got := get(t, m, "predicate.runDetails.builder.id"); got != BuilderIDPrefix {
		t.Errorf("builder id = %v", got)
	}
	if got := get(t, m, "predicate.buildDefinition.resolvedDependencies.0.uri"); got != "/src/a" {
		t.Errorf("source uri = %v", got)
	}
	if got := get(t, m, "predicate.runDetails.metadata.startedOn"); got != nil {
		t.Errorf("startedOn = %v", got)
	}
}

// A git context given with a token as its user name: the statement records the source
// without it, in every place it names the source.
func TestStatementRedactsSourceUser(t *testing.T) {
	const token = "0123456789abcdef0123456789abcdef01234567"
	st, err := Statement("oci:./mirror", imageDigest, Build{App: "a", Version: "1", Platform: "linux/amd64",
		SourceURL: "https://" + token + "@git.example/a.git", SourceRef: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := JSON(st)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), token) || !strings.Contains(string(b), "https://[redacted]@git.example/a.git") {
		t.Errorf("statement:\n%s", b)
	}
}

func TestStatementErrors(t *testing.T) {
	tests := map[string]func(*Build){
		"no app":             func(b *Build) { b.App = "" },
		"no source":          func(b *Build) { b.SourceURL = "" },
		"short commit":       func(b *Build) { b.SourceCommit = "abc123" },
		"bad base digest":    func(b *Build) { b.BaseImages[0].Digest = "sha256:xyz" },
		"bad artifact sum":   func(b *Build) { b.Artifacts[0].SHA256 = "1234" },
		"artifact no uri":    func(b *Build) { b.Artifacts[0].URI = "" },
		"finished < started": func(b *Build) { b.Finished = b.Started.Add(-time.Hour) },
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			b := testBuild()
			mutate(&b)
			if _, err := Statement("x/y", imageDigest, b); err == nil {
				t.Fatal("Statement succeeded")
			}
		})
	}
	if _, err := Statement("", imageDigest, testBuild()); err == nil {
		t.Error("empty subject name accepted")
	}
	if _, err := Statement("x/y", v1.Hash{}, testBuild()); err == nil {
		t.Error("empty subject digest accepted")
	}
	if _, err := Statement("x/y", v1.Hash{Algorithm: "sha256", Hex: "abcd"}, testBuild()); !errors.Is(err, intoto.ErrIncorrectDigestLength) {
		t.Errorf("short subject digest: %v", err)
	}
}

func TestMirrorStatement(t *testing.T) {
	m := Mirror{
		Upstream:   Upstream{Repository: "https://github.com/mattermost/mattermost", Version: "10.3.1", Ref: "v10.3.1"},
		Registry:   "ghcr.io",
		Repository: "acme/mirror/mattermost",
		Platforms:  []string{"linux/amd64", "linux/arm64"},
		Archmirror: Archmirror{Version: "0.3.0"},
	}
	st, err := MirrorStatement("ghcr.io/acme/mirror/mattermost", imageDigest, m)
	if err != nil {
		t.Fatal(err)
	}
	got := decode(t, st)
	if got["predicateType"] != MirrorPredicateType {
		t.Errorf("predicateType = %v", got["predicateType"])
	}
	want := map[string]any{
		"upstream": map[string]any{
			"repository": "https://github.com/mattermost/mattermost",
			"version":    "10.3.1",
			"ref":        "v10.3.1",
		},
		"registry":   "ghcr.io",
		"repository": "acme/mirror/mattermost",
		"platforms":  []any{"linux/amd64", "linux/arm64"},
		"archmirror": map[string]any{"version": "0.3.0"},
	}
	if !reflect.DeepEqual(got["predicate"], want) {
		t.Errorf("predicate = %#v\nwant %#v", got["predicate"], want)
	}

	// The predicate decodes back into Mirror.
	b, _ := json.Marshal(got["predicate"])
	var back Mirror
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, m) {
		t.Errorf("round trip = %+v, %v", back, err)
	}

	for name, mutate := range map[string]func(*Mirror){
		"no upstream repo":    func(m *Mirror) { m.Upstream.Repository = "" },
		"no upstream version": func(m *Mirror) { m.Upstream.Version = "" },
		"no repository":       func(m *Mirror) { m.Repository = "" },
		"no platforms":        func(m *Mirror) { m.Platforms = nil },
	} {
		bad := m
		bad.Platforms = append([]string(nil), m.Platforms...)
		mutate(&bad)
		if _, err := MirrorStatement("x/y", imageDigest, bad); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestIndexStatement(t *testing.T) {
	amd := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("4", 64)}
	arm := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("5", 64)}
	st, err := IndexStatement("ghcr.io/acme/mirror/mattermost-server", imageDigest, testBuild(),
		[]IndexImage{{"linux/amd64", amd}, {"linux/arm64", arm}})
	if err != nil {
		t.Fatal(err)
	}
	m := decode(t, st)
	for path, want := range map[string]any{
		"subject.0.digest.sha256":                                               imageDigest.Hex,
		"predicate.buildDefinition.buildType":                                   IndexBuildType,
		"predicate.buildDefinition.externalParameters.platforms.1":              "linux/arm64",
		"predicate.buildDefinition.externalParameters.version":                  "10.3.1",
		"predicate.buildDefinition.externalParameters.buildArgs.MIRROR":         "https://[redacted]@mirror.example/pkgs",
		"predicate.buildDefinition.resolvedDependencies.0.name":                 "source",
		"predicate.buildDefinition.resolvedDependencies.1.uri":                  "ghcr.io/acme/mirror/mattermost-server@" + amd.String(),
		"predicate.buildDefinition.resolvedDependencies.2.digest.sha256":        arm.Hex,
		"predicate.buildDefinition.resolvedDependencies.2.annotations.platform": "linux/arm64",
	} {
		if got := get(t, m, path); got != want {
			t.Errorf("%s = %v, want %v", path, got, want)
		}
	}
	if get(t, m, "predicate.buildDefinition.externalParameters.platform") != nil {
		t.Error("an index statement names a single platform")
	}
	// The platform images' base images and downloads are theirs, not the index's.
	if n := len(get(t, m, "predicate.buildDefinition.resolvedDependencies").([]any)); n != 3 {
		t.Errorf("%d resolved dependencies, want source + 2 images", n)
	}
	if _, err := IndexStatement("x", imageDigest, testBuild(), nil); err == nil {
		t.Error("index statement without images")
	}
}
