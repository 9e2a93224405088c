package discover

import (
	"os"
	"regexp"
	"testing"
)

// FuzzVersionFromTag feeds arbitrary tags through version extraction, with and without a
// version regex. It must never panic, and whatever it accepts must be a valid OCI tag (both
// the upstream tag and the extracted version) and a stable semver.
func FuzzVersionFromTag(f *testing.F) {
	for _, s := range []string{"v1.0.0", "10.3.1", "v10.3.1-limitless", "{{.Version}}", "$(id)", "v1.0.0;rm -rf /", "../../etc", "\u0432" + "1.0.0"} {
		f.Add(s)
	}
	res := []*regexp.Regexp{
		nil,
		regexp.MustCompile(`^v(\d+\.\d+\.\d+)-limitless$`),
		regexp.MustCompile(`(?P<version>[^/]+)$`),
		regexp.MustCompile(`(.*)`),
	}
	f.Fuzz(func(t *testing.T, tag string) {
		for _, re := range res {
			version, sv, reason := versionFromTag(tag, re)
			if reason != "" {
				if version != "" || sv != nil {
					t.Fatalf("%q: rejected (%s) but returned %q", tag, reason, version)
				}
				continue
			}
			if !ValidTag(tag) || !ociTagRE.MatchString(tag) {
				t.Fatalf("accepted tag %q is not a valid OCI tag", tag)
			}
			if !ValidTag(version) || !ociTagRE.MatchString(version) {
				t.Fatalf("%q: accepted version %q is not a valid OCI tag", tag, version)
			}
			if sv == nil || sv.Prerelease() != "" {
				t.Fatalf("%q: accepted version %q is not a stable semver", tag, version)
			}
			if d := displayTag(tag); d != tag {
				t.Fatalf("valid tag %q displayed as %q", tag, d)
			}
		}
		if d := displayTag(tag); len(d) > 64*10+8 {
			t.Fatalf("display of %d-byte tag is %d bytes", len(tag), len(d))
		}
	})
}

// FuzzDecodePage feeds arbitrary bodies to the page checks and decoders of both APIs: errors
// are fine, panics are not.
func FuzzDecodePage(f *testing.F) {
	for _, p := range []string{"testdata/github_releases_mattermost.json", "testdata/gitlab_tags_mostlymatter.json"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`[{"tag_name":null,"published_at":"yesterday","commit":[]}]`))
	f.Add([]byte(`<html>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if checkJSON("application/json", body) != nil {
			return
		}
		_, _ = decodeGitHubReleases(body)
		_, _ = decodeGitLabTags(body)
		_ = apiMessage(body)
	})
}
