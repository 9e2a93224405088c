package build

import (
	"regexp"
	"strings"
	"testing"

	"github.com/archmirror/archmirror/internal/config"
)

const digest64 = "5b0b1a9a54651bbe9d4d3ee96bbda2b2a1da3d2fa198ddebbced46dfdca7f216"

func unpin() config.Patch { return config.Patch{UnpinDigests: true} }

func insertAfter(match, l string) config.Patch {
	return config.Patch{InsertAfter: &config.InsertAfter{Match: match, Line: l, MatchRE: regexp.MustCompile(match)}}
}

func replace(match, with string) config.Patch {
	return config.Patch{Replace: &config.Replace{Match: match, With: with, MatchRE: regexp.MustCompile(match)}}
}

func TestApply(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		patches []config.Patch
		want    string
		err     string // substring of the error; "" = no error
	}{
		{
			name:    "unpin keeps the tag",
			in:      "FROM debian:buster-slim@sha256:" + digest64 + "\nRUN true\n",
			patches: []config.Patch{unpin()},
			want:    "FROM debian:buster-slim\nRUN true\n",
		},
		{
			name: "unpin keeps flags, AS and other stages",
			in: "FROM --platform=$BUILDPLATFORM golang:1.22@sha256:" + digest64 + " AS build\n" +
				"from node:20@sha256:" + digest64 + " as web\n" +
				"FROM scratch\n" +
				"FROM registry.example:5000/ns/base@sha256:" + digest64 + "\n" +
				"COPY --from=build /x /x\n",
			patches: []config.Patch{unpin()},
			want: "FROM --platform=$BUILDPLATFORM golang:1.22 AS build\n" +
				"from node:20 as web\n" +
				"FROM scratch\n" +
				"FROM registry.example:5000/ns/base\n" +
				"COPY --from=build /x /x\n",
		},
		{
			name:    "unpin without any digest fails",
			in:      "FROM debian:bookworm\n# FROM old@sha256:" + digest64 + "\n",
			patches: []config.Patch{unpin()},
			err:     `patch 1 (unpin-digests): no FROM line has an @sha256 digest of Dockerfile`,
		},
		{
			name:    "unpin ignores a short digest",
			in:      "FROM debian@sha256:abc\n",
			patches: []config.Patch{unpin()},
			err:     "no FROM line has an @sha256 digest",
		},
		{
			name:    "insert-after every match",
			in:      "ARG A=1\nARG B=2\nARG A2\n",
			patches: []config.Patch{insertAfter(`^ARG A`, "ARG X")},
			want:    "ARG A=1\nARG X\nARG B=2\nARG A2\nARG X\n",
		},
		{
			name:    "insert-after the last line without a newline",
			in:      "FROM x\nARG A=1",
			patches: []config.Patch{insertAfter(`^ARG A`, "ARG X")},
			want:    "FROM x\nARG A=1\nARG X",
		},
		{
			name: "insert-after goes after the continued instruction",
			in: "RUN apt-get update \\\n" +
				"  # a comment inside\n" +
				"\n" +
				"  && apt-get install -y curl \\\n" +
				"  && rm -rf /var/lib/apt/lists/*\n" +
				"USER app\n",
			patches: []config.Patch{insertAfter(`apt-get`, "RUN echo done")},
			want: "RUN apt-get update \\\n" +
				"  # a comment inside\n" +
				"\n" +
				"  && apt-get install -y curl \\\n" +
				"  && rm -rf /var/lib/apt/lists/*\n" +
				"RUN echo done\n" +
				"USER app\n",
		},
		{
			name:    "escape directive",
			in:      "# escape=`\nRUN a `\n  b\\\nRUN c\n",
			patches: []config.Patch{insertAfter(`^RUN a`, "RUN x")},
			want:    "# escape=`\nRUN a `\n  b\\\nRUN x\nRUN c\n",
		},
		{
			name:    "insert-after no match",
			in:      "FROM x\nARG PACKAGE=\n",
			patches: []config.Patch{insertAfter(`^ARG MM_PACKAGE=`, "ARG MOSTLYMATTER_BINARY")},
			err:     `patch 1 (insert-after "^ARG MM_PACKAGE="): matched no line of Dockerfile`,
		},
		{
			name:    "replace with group and shell variables",
			in:      "RUN curl $URL | tar -xz\nRUN echo ${HOME}\n",
			patches: []config.Patch{replace(`(tar -x)z$`, `${1}vz && echo $DONE ${PGID} $$ $1`)},
			want:    "RUN curl $URL | tar -xvz && echo $DONE ${PGID} $ tar -x\nRUN echo ${HOME}\n",
		},
		{
			name:    "replace named group",
			in:      "ENV V=1.2.3\n",
			patches: []config.Patch{replace(`V=(?P<v>[0-9.]+)`, `V=${v}-x $v2`)},
			want:    "ENV V=1.2.3-x $v2\n",
		},
		{
			name:    "replace no match",
			in:      "RUN curl $MM_PACKAGE | tar -xvz ; \\\n  && true\n",
			patches: []config.Patch{unpinFree(), replace(`tar -xvz$`, "x")},
			err:     `patch 2 (replace "tar -xvz$"): matched no line of Dockerfile`,
		},
		{
			name: "CRLF file stays CRLF",
			in:   "FROM a@sha256:" + digest64 + "\r\nARG P=\r\nRUN get $P | tar -xz\r\n",
			patches: []config.Patch{
				unpin(),
				insertAfter(`^ARG P=$`, "ARG Q"),
				replace(`tar -xz$`, "tar -xzv"),
			},
			want: "FROM a\r\nARG P=\r\nARG Q\r\nRUN get $P | tar -xzv\r\n",
		},
		{
			name:    "patches apply in order",
			in:      "ARG A\n",
			patches: []config.Patch{insertAfter(`^ARG A$`, "ARG B"), replace(`^ARG B$`, "ARG C")},
			want:    "ARG A\nARG C\n",
		},
		{
			name:    "empty patch",
			in:      "FROM x\n",
			patches: []config.Patch{{}},
			err:     "patch 1 (empty): sets no kind",
		},
		{
			name:    "regex compiled when the loader did not",
			in:      "ARG A\n",
			patches: []config.Patch{{Replace: &config.Replace{Match: "^ARG (A)$", With: "ARG ${1}1"}}},
			want:    "ARG A1\n",
		},
		{
			name:    "bad regex",
			in:      "ARG A\n",
			patches: []config.Patch{{Replace: &config.Replace{Match: "(", With: ""}}},
			err:     `patch 1 (replace "("): bad regex`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Apply([]byte(tt.in), tt.patches, "Dockerfile")
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error = %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

// unpinFree is a patch that always matches, to check that errors count patches from 1.
func unpinFree() config.Patch { return replace(`^`, "") }

// mattermostDockerfile has the shape of mattermost/mattermost's server/build/Dockerfile (the
// same in 7.x to 10.x releases): an amd64-only pinned base, ARG MM_PACKAGE, and the download
// in the middle of a continued RUN ending in "tar -xvz ; \".
const mattermostDockerfile = `FROM debian:buster-slim@sha256:` + digest64 + `


# Setting bash as our shell, and enabling pipefail option
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Some ENV variables
ENV PATH="/mattermost/bin:${PATH}"
ARG PUID=2000
ARG PGID=2000
ARG MM_PACKAGE="https://releases.mattermost.com/7.9.1/mattermost-7.9.1-linux-amd64.tar.gz?src=docker"

# Set mattermost group/user and download Mattermost
RUN mkdir -p /mattermost/data /mattermost/plugins /mattermost/client/plugins \
  && addgroup -gid ${PGID} mattermost \
  && adduser -q --disabled-password --uid ${PUID} --gid ${PGID} --gecos "" --home /mattermost mattermost \
  && if [ -n "$MM_PACKAGE" ]; then curl $MM_PACKAGE | tar -xvz ; \
  else echo "please set the MM_PACKAGE" ; exit 127 ; fi \
  && chown -R mattermost:mattermost /mattermost /mattermost/data /mattermost/plugins /mattermost/client/plugins

USER mattermost
`

const mattermostWhere = "https://github.com/mattermost/mattermost.git#v10.3.1:server/build/Dockerfile"

func TestApplyMattermost(t *testing.T) {
	// The patch list of DESIGN.md's mostlymatter example: its replace anchors "tar -xvz" at the
	// end of the line, but upstream's line ends in "tar -xvz ; \", so it must fail, naming the
	// patch and the Dockerfile.
	design := []config.Patch{
		unpin(),
		insertAfter(`^ARG MM_PACKAGE=`, `ARG MOSTLYMATTER_BINARY`),
		replace(`tar -xvz$`, `tar -xvz && curl -fL $MOSTLYMATTER_BINARY -o /mattermost/bin/mattermost`),
	}
	_, err := Apply([]byte(mattermostDockerfile), design, mattermostWhere)
	want := `patch 3 (replace "tar -xvz$"): matched no line of ` + mattermostWhere
	if err == nil || err.Error() != want {
		t.Fatalf("DESIGN.md patches: error = %v, want %q", err, want)
	}

	// The same intent, anchored on what upstream has.
	working := []config.Patch{
		unpin(),
		insertAfter(`^ARG MM_PACKAGE=`, `ARG MOSTLYMATTER_BINARY`),
		replace(`tar -xvz ;`, `tar -xvz && curl -fL $MOSTLYMATTER_BINARY -o /mattermost/bin/mattermost ;`),
	}
	got, err := Apply([]byte(mattermostDockerfile), working, mattermostWhere)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"FROM debian:buster-slim\n",
		"ARG MM_PACKAGE=\"https://releases.mattermost.com/7.9.1/mattermost-7.9.1-linux-amd64.tar.gz?src=docker\"\nARG MOSTLYMATTER_BINARY\n\n",
		`then curl $MM_PACKAGE | tar -xvz && curl -fL $MOSTLYMATTER_BINARY -o /mattermost/bin/mattermost ; \` + "\n",
	} {
		if !strings.Contains(string(got), want) {
			t.Errorf("patched Dockerfile lacks %q:\n%s", want, got)
		}
	}
	if strings.Count(string(got), "\n") != strings.Count(mattermostDockerfile, "\n")+1 {
		t.Errorf("want exactly one line more:\n%s", got)
	}

	// Upstream drift: a release that unpinned its base makes unpin-digests fail too.
	drifted := strings.Replace(mattermostDockerfile, "@sha256:"+digest64, "", 1)
	_, err = Apply([]byte(drifted), working, mattermostWhere)
	if want := "patch 1 (unpin-digests): no FROM line has an @sha256 digest of " + mattermostWhere; err == nil || err.Error() != want {
		t.Errorf("drifted: error = %v, want %q", err, want)
	}
}
