package build

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The testdata/provenance predicates were recorded by buildkitd v0.34.2's build history for
// TestBuildKit-style builds (see testdata/provenance/README.md).
const (
	capturedBase      = "127.0.0.1:39859/base:latest"
	capturedIndex     = "sha256:9766b84658e8028c3970cfbf9a784a0daca7b69c5faeabca1bf0ca8c7bf50e5f"
	capturedURL       = "http://127.0.0.1:45593/app-amd64.tar.gz"
	capturedSHA256    = "sha256:40880f2cfc30a9393bb67d6f9e1bcfa651a0d3cf39488c06311543bd0917e72a"
	capturedCommit    = "93e11cec25049163b0e74fa63bd391685f7c884c"
	capturedTagObject = "00b962e922293c192a5037e6939e1570721d5981" // the annotated tag v1.2.3-a
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "provenance", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func TestParseProvenanceCaptured(t *testing.T) {
	base := []BaseImage{{Ref: capturedBase, Digest: capturedIndex}}
	artifacts := []Artifact{{URI: capturedURL, SHA256: capturedSHA256}}
	for _, tt := range []struct {
		file              string
		commit            string
		started, finished string
	}{
		{"v1-git-tag.json", capturedCommit, "2026-11-23T13:07:32.138210645Z", "2026-11-23T13:07:33.035544027Z"},
		// BuildKit records an annotated tag's object, not the commit: inputsFrom peels it
		{"v1-git-annotated-tag.json", capturedTagObject, "2026-11-23T13:07:33.162558883Z", "2026-11-23T13:07:33.28905767Z"},
		{"v1-local.json", "", "2026-11-23T13:07:33.313186901Z", "2026-11-23T13:07:33.490035Z"},
		{"v02-git-tag.json", capturedCommit, "2026-11-23T13:07:32.138210645Z", "2026-11-23T13:07:33.035544027Z"},
	} {
		t.Run(tt.file, func(t *testing.T) {
			got, err := parseProvenance(readTestdata(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			want := Inputs{
				SourceCommit: tt.commit,
				BaseImages:   base,
				Artifacts:    artifacts,
				Started:      mustTime(t, tt.started),
				Finished:     mustTime(t, tt.finished),
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}

	// an in-toto statement around the predicate reads the same
	pred := readTestdata(t, "v1-git-tag.json")
	st := fmt.Sprintf(`{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":%q,"predicate":%s}`, slsaV1, pred)
	a, errA := parseProvenance(pred)
	b, errB := parseProvenance([]byte(st))
	if errA != nil || errB != nil || !reflect.DeepEqual(a, b) {
		t.Errorf("statement: %+v, %v\npredicate: %+v, %v", b, errB, a, errA)
	}
}

// slsaV1Predicate wraps resolved dependencies and a configSource in a minimal SLSA v1 predicate.
func slsaV1Predicate(configSource, deps string) []byte {
	return []byte(`{"buildDefinition":{"externalParameters":{"configSource":` + configSource +
		`,"request":{"args":{"build-arg:GITHUB_TOKEN":"ghp_s3cretvalue0123456789abcdef","build-arg:PASSWORD":"hunter2"}}},` +
		`"resolvedDependencies":[` + deps + `]},` +
		`"runDetails":{"metadata":{"startedOn":"2026-01-02T03:04:05Z","finishedOn":"2026-01-02T03:04:09.5Z"}}}`)
}

const (
	hex64 = "5b0b1a9a54651bbe9d4d3ee96bbda2b2a1da3d2fa198ddebbced46dfdca7f216"
	hex40 = "93e11cec25049163b0e74fa63bd391685f7c884c"
)

func TestParseProvenance(t *testing.T) {
	started, finished := mustTime(t, "2026-01-02T03:04:05Z"), mustTime(t, "2026-01-02T03:04:09.5Z")
	dep := func(uri, alg, h string) string {
		return fmt.Sprintf(`{"uri":%q,"digest":{%q:%q}}`, uri, alg, h)
	}
	for _, tt := range []struct {
		name string
		in   []byte
		want Inputs // Started and Finished are the v1 helper's unless the test says
		err  string // "" for none; else a fragment of the error
		errs int    // how many problems the error lists, when more than one
		zero bool   // want Inputs{} exactly (nothing could be read)
	}{
		{
			name: "docker hub and other registries, tags and digests",
			in: slsaV1Predicate(`{}`, strings.Join([]string{
				dep("pkg:docker/alpine@3.20?platform=linux%2Famd64", "sha256", hex64),
				dep("pkg:docker/acme/app@1.0?digest=sha256:"+hex64+"&platform=linux%2Farm64%2Fv8", "sha256", hex64),
				dep("pkg:docker/ghcr.io/acme/tools/go@1.22", "sha256", strings.ToUpper(hex64)),
				`{"uri":"pkg:docker/registry.example%3A5000/ns/base?digest=sha256:` + hex64 + `&platform=linux%2Famd64"}`,
				dep("pkg:docker/alpine@3.20?platform=linux%2Famd64", "sha256", hex64), // the same twice
			}, ",")),
			want: Inputs{BaseImages: []BaseImage{
				{Ref: "docker.io/library/alpine:3.20", Digest: "sha256:" + hex64},
				{Ref: "docker.io/acme/app:1.0", Digest: "sha256:" + hex64},
				{Ref: "ghcr.io/acme/tools/go:1.22", Digest: "sha256:" + hex64},
				{Ref: "registry.example:5000/ns/base", Digest: "sha256:" + hex64},
			}},
		},
		{
			name: "what is not a pulled image or a download is ignored",
			in: slsaV1Predicate(`{}`, strings.Join([]string{
				dep("pkg:docker/alpine@3.20?ref_type=blob", "sha256", hex64),
				dep("pkg:oci/local@1?platform=linux%2Famd64", "sha256", hex64),
				dep("git://example.com/other.git#main", "sha1", hex40), // a git ADD, not the context
				dep("file:///etc/passwd", "sha256", hex64),
				dep("ftp://example.com/x.tar.gz", "sha256", hex64),
				dep("", "sha256", hex64),
				`{"uri":"https://example.com/x.tgz"}`, // recorded without a digest
			}, ",")),
			want: Inputs{Artifacts: []Artifact{{URI: "https://example.com/x.tgz"}}},
		},
		{
			name: "git context: the configSource's commit",
			in: slsaV1Predicate(fmt.Sprintf(`{"uri":"https://github.com/acme/app.git#v1.2.3:build","digest":{"sha1":%q},"path":"Dockerfile"}`, strings.ToUpper(hex40)),
				dep("https://github.com/acme/app.git#v1.2.3", "sha1", hex40)+","+
					dep("https://github.com/acme/lib.git#main", "sha1", strings.Repeat("a", 40))),
			want: Inputs{SourceCommit: hex40},
		},
		{
			name: "git context without a configSource digest: its dependency's",
			in: slsaV1Predicate(`{"uri":"git@github.com:acme/app.git#v1.2.3:build"}`,
				dep("git@github.com:acme/lib.git#v1.2.3", "sha1", strings.Repeat("a", 40))+","+
					dep("git@github.com:acme/app.git#v1.2.3", "sha1", hex40)),
			want: Inputs{SourceCommit: hex40},
		},
		{
			name: "a local context has no commit, whatever git dependencies there are",
			in:   slsaV1Predicate(`{"path":"Dockerfile"}`, dep("https://github.com/acme/app.git#v1.2.3", "sha1", hex40)),
			want: Inputs{},
		},
		{
			name: "sha256 git repository",
			in:   slsaV1Predicate(fmt.Sprintf(`{"uri":"https://example.com/app.git#v1","digest":{"sha256":%q}}`, hex64), ""),
			err:  "git context: a sha256 git repository",
		},
		{
			name: "bad commit",
			in:   slsaV1Predicate(`{"uri":"https://example.com/app.git#v1","digest":{"sha1":"v1.2.3"}}`, ""),
			err:  `git context: sha1 "v1.2.3" is not a 40-hex git object name`,
		},
		{
			name: "bad entries are left out, the rest is kept",
			in: slsaV1Predicate(`{}`, strings.Join([]string{
				`"not an object"`,
				`{"uri":"pkg:docker/alpine@3.20","digest":{"sha256":42}}`,
				dep("pkg:docker/alpine@3.20", "sha256", "zz"),
				dep("pkg:docker/alpine@3.20", "sha256", hex64[:62]),
				dep("pkg:docker/%zz@1", "sha256", hex64),
				dep("pkg:docker/@1", "sha256", hex64),
				dep("pkg:docker/UPPER/Case@1", "sha256", hex64),
				dep("pkg:docker/alpine?digest=md5:abc", "", ""),
				dep("pkg:docker/alpine@3.20?a=%zz", "sha256", hex64),
				dep("https://example.com/x.tgz", "sha256", "not hex"),
				dep("https://example.com/%zz", "sha256", hex64),
				dep("pkg:docker/debian@12", "sha256", hex64),
				dep("https://example.com/y.tgz", "sha256", hex64),
			}, ",")),
			want: Inputs{
				BaseImages: []BaseImage{{Ref: "docker.io/library/debian:12", Digest: "sha256:" + hex64}},
				Artifacts:  []Artifact{{URI: "https://example.com/y.tgz", SHA256: "sha256:" + hex64}},
			},
			err:  "dependency 0: json: cannot unmarshal string",
			errs: 11,
		},
		{
			name: "many bad entries: the first ten are described",
			in:   slsaV1Predicate(`{}`, strings.TrimSuffix(strings.Repeat(`{"uri":"https://x/y","digest":{"sha256":"0"}},`, 50), ",")),
			want: Inputs{},
			err:  "dependency 9: https://x/y: sha256 \"0\" is not 64 hex digits\nand 40 more",
			errs: 11,
		},
		{
			name: "a malformed section loses only itself",
			in:   []byte(`{"buildDefinition":{"resolvedDependencies":{"uri":"x"}},"runDetails":{"metadata":{"startedOn":"2026-01-02T03:04:05Z","finishedOn":"2026-01-02T03:04:09.5Z"}}}`),
			want: Inputs{},
			err:  "buildDefinition.resolvedDependencies: json: cannot unmarshal object",
		},
		{
			name: "bad times",
			in:   []byte(`{"buildDefinition":{},"runDetails":{"metadata":{"startedOn":"yesterday","finishedOn":17}}}`),
			want: Inputs{Started: time.Time{}, Finished: time.Time{}},
			err:  "started: parsing time",
		},
		{
			name: "null sections",
			in:   []byte(`{"buildDefinition":null,"runDetails":{"metadata":null}}`),
			want: Inputs{},
		},
		{name: "not JSON", in: []byte(`{"buildDefinition":`), err: "predicate: unexpected end", zero: true},
		{name: "empty", in: nil, err: "predicate: unexpected end", zero: true},
		{name: "null", in: []byte(`null`), zero: true},
		{name: "array", in: []byte(`[1,2]`), err: "predicate: json: cannot unmarshal array", zero: true},
		{name: "string", in: []byte(`"x"`), err: "predicate: json: cannot unmarshal string", zero: true},
		{name: "statement with a bad predicate", in: []byte(`{"predicateType":"x","predicate":[]}`), err: "statement predicate", zero: true},
		{name: "deeply nested", in: []byte(strings.Repeat(`{"buildDefinition":`, 20000) + strings.Repeat(`}`, 20000)), err: "exceeded max depth", zero: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProvenance(tt.in)
			switch {
			case tt.err == "" && err != nil:
				t.Errorf("error: %v", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Errorf("error = %v, want %q", err, tt.err)
			case tt.errs > 1 && len(err.(interface{ Unwrap() []error }).Unwrap()) != tt.errs:
				t.Errorf("error lists %d problems, want %d:\n%v", len(err.(interface{ Unwrap() []error }).Unwrap()), tt.errs, err)
			}
			want := tt.want
			if !tt.zero && strings.Contains(string(tt.in), `"startedOn":"2026-01-02T03:04:05Z"`) {
				want.Started, want.Finished = started, finished
			}
			if tt.zero {
				want = Inputs{}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
			// nothing of the request (build args) is ever copied
			for _, secret := range []string{"s3cret", "hunter2", "GITHUB_TOKEN"} {
				if s := fmt.Sprintf("%+v", got); strings.Contains(s, secret) {
					t.Errorf("%q copied into %s", secret, s)
				}
			}
		})
	}
}

func TestInputsFrom(t *testing.T) {
	clockStart := mustTime(t, "2026-02-01T00:00:00Z")
	clockEnd := clockStart.Add(time.Minute)
	tagged := readTestdata(t, "v1-git-tag.json")
	annotated := readTestdata(t, "v1-git-annotated-tag.json")
	local := readTestdata(t, "v1-local.json")

	for _, tt := range []struct {
		name     string
		pred     []byte
		pin      *gitPin
		args     map[string]string
		commit   string
		warnings []string
		clock    bool // Started and Finished are the builder's clock
	}{
		{name: "lightweight tag", pred: tagged, pin: &gitPin{checksum: capturedCommit, commit: capturedCommit}, commit: capturedCommit},
		{name: "annotated tag peeled to its commit", pred: annotated, pin: &gitPin{checksum: capturedTagObject, commit: capturedCommit}, commit: capturedCommit},
		{
			name: "ref moved between reading the Dockerfile and the build", pred: annotated,
			pin:      &gitPin{checksum: capturedCommit, commit: capturedCommit},
			warnings: []string{"git object " + capturedTagObject + ": the ref resolved to " + capturedCommit + " when the Dockerfile was read"},
		},
		{
			name: "ref not resolved before the build", pred: tagged, pin: &gitPin{err: errors.New("unimplemented")},
			warnings: []string{"the ref was not resolved before the build (unimplemented), so whether it is a commit or an annotated tag is unknown"},
		},
		{name: "local context", pred: local},
		{
			name: "git context without a recorded commit", pred: local, pin: &gitPin{checksum: capturedCommit, commit: capturedCommit},
			warnings: []string{"buildkit recorded no commit for the git context"},
		},
		{
			name: "git commit recorded for a local context", pred: tagged,
			warnings: []string{"buildkit recorded git object " + capturedCommit + " for a local context"},
		},
		{name: "no record", pred: nil, clock: true},
		{
			name: "malformed record", pred: []byte(`{"runDetails":{"metadata":{"startedOn":"2026-01-01T00:00:00Z","finishedOn":"2025-01-01T00:00:00Z"}}`),
			clock: true, warnings: []string{"buildkit's provenance record: predicate: unexpected end of JSON input"},
		},
		{
			name: "finished before started: the builder's clock", pred: []byte(`{"runDetails":{"metadata":{"startedOn":"2026-01-01T00:00:00Z","finishedOn":"2025-01-01T00:00:00Z"}}}`),
			clock: true,
		},
		{
			name: "only one time recorded: the builder's clock", pred: []byte(`{"runDetails":{"metadata":{"startedOn":"2026-01-01T00:00:00Z"}}}`),
			clock: true,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in, warnings := inputsFrom(tt.pred, tt.pin, clockStart, clockEnd, tt.args)
			if in.SourceCommit != tt.commit {
				t.Errorf("SourceCommit = %q, want %q", in.SourceCommit, tt.commit)
			}
			if len(warnings) != len(tt.warnings) {
				t.Errorf("warnings %v, want %q", warnings, tt.warnings)
			}
			for i := range min(len(warnings), len(tt.warnings)) {
				if !strings.Contains(warnings[i].Error(), tt.warnings[i]) {
					t.Errorf("warning %v, want %q", warnings[i], tt.warnings[i])
				}
			}
			if clock := in.Started.Equal(clockStart) && in.Finished.Equal(clockEnd); clock != tt.clock {
				t.Errorf("times %s … %s; want the builder's clock: %v", in.Started, in.Finished, tt.clock)
			}
			if in.Finished.Before(in.Started) {
				t.Errorf("finished %s before started %s", in.Finished, in.Started)
			}
		})
	}
}

// An ADD URL can expand a secret build arg: its value never reaches Inputs.
func TestInputsFromScrubsSecrets(t *testing.T) {
	pred := slsaV1Predicate(`{}`, strings.Join([]string{
		`{"uri":"https://example.com/dl/ghp_abcdefghijklmnopqrstuvwxyz0123/app.tgz?sig=hunter2-long","digest":{"sha256":"` + hex64 + `"}}`,
		`{"uri":"https://bot:pa55word@example.com/app.tgz","digest":{"sha256":"` + hex64 + `"}}`,
		`{"uri":"https://example.com/app.tgz?token=plainvalue","digest":{"sha256":"` + hex64 + `"}}`,
		`{"uri":"pkg:docker/registry.example/hunter2-long/base@1","digest":{"sha256":"` + hex64 + `"}}`,
	}, ","))
	args := map[string]string{"DOWNLOAD_KEY": "hunter2-long", "SHORT_TOKEN": "abc", "VERSION": "plainvalue"}
	in, warnings := inputsFrom(pred, nil, time.Now(), time.Now(), args)
	if len(warnings) != 0 {
		t.Fatal(warnings)
	}
	want := Inputs{
		BaseImages: []BaseImage{{Ref: "registry.example/[redacted]/base:1", Digest: "sha256:" + hex64}},
		Artifacts: []Artifact{
			{URI: "https://example.com/dl/[redacted]/app.tgz?sig=[redacted]", SHA256: "sha256:" + hex64},
			{URI: "https://[redacted]@example.com/app.tgz", SHA256: "sha256:" + hex64},
			{URI: "https://example.com/app.tgz?token=plainvalue", SHA256: "sha256:" + hex64}, // not a secret arg's value
		},
	}
	in.Started, in.Finished = time.Time{}, time.Time{}
	if !reflect.DeepEqual(in, want) {
		t.Errorf("got  %+v\nwant %+v", in, want)
	}
}

func TestTransientPush(t *testing.T) {
	for msg, want := range map[string]bool{
		`failed to push 127.0.0.1:5000/mirror/hello: failed to do request: Put "http://127.0.0.1:5000/v2/mirror/hello/blobs/uploads/x": unexpected status from PUT request: 502 Bad Gateway`: true,
		`exporting to image: pushing layers: failed to copy: read tcp 127.0.0.1:1->127.0.0.1:2: read: connection reset by peer`:                                                              true,
		`failed to push: unexpected status from HEAD request: 429 Too Many Requests`:                                                                                                         true,
		`failed to push 127.0.0.1:5000/mirror/hello: unexpected status: 401 Unauthorized`:                                                                                                    false,
		`process "/bin/sh -c wget $PACKAGE" did not complete successfully: 500 Internal Server Error`:                                                                                        false, // the build's own download
		`failed to solve: failed to compute cache key: "/missing" not found`:                                                                                                                 false,
	} {
		if got := TransientPush(errors.New(msg)); got != want {
			t.Errorf("TransientPush(%q) = %v, want %v", msg, got, want)
		}
	}
	if TransientPush(nil) {
		t.Error("TransientPush(nil)")
	}
}
