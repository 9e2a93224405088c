package discover

import (
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/archmirror/archmirror/internal/config"
)

// TestKindsComplete: every kind has every part, a valid sample of it loads, builds and has a
// homepage. A kind added without a homepage cannot label images with nothing.
func TestKindsComplete(t *testing.T) {
	// A valid source of every kind in the table; a kind without one fails here.
	samples := map[string]config.Source{
		"github":   {GitHub: "acme/app"},
		"gitlab":   {GitLab: "group/sub/project"},
		"git":      {Git: "https://git.example/acme/app.git"},
		"registry": {Registry: "docker.io/library/nginx"},
	}
	kinds := SourceKinds()
	seen := map[string]bool{}
	for _, k := range kinds {
		if k.Name == "" || k.Want == "" || k.Field == nil || k.Check == nil || k.New == nil || k.Homepage == nil {
			t.Errorf("kind %q lacks a part: %+v", k.Name, k)
			continue
		}
		if seen[k.Name] {
			t.Errorf("kind %q is in the table twice", k.Name)
		}
		seen[k.Name] = true
		src, ok := samples[k.Name]
		if !ok {
			t.Errorf("kind %q has no sample in samples", k.Name)
			continue
		}
		got, err := kinds.Of(src)
		if err != nil || got.Name != k.Name {
			t.Errorf("Of(sample %s) = %q, %v", k.Name, got.Name, err)
			continue
		}
		if errs := kinds.CheckSource(&src); len(errs) > 0 {
			t.Errorf("sample %s: %v", k.Name, errs)
		}
		if h := Homepage(src); h == "" {
			t.Errorf("kind %s: empty homepage", k.Name)
		}
		if s, err := New(src); err != nil || s == nil {
			t.Errorf("New(sample %s) = %v, %v", k.Name, s, err)
		}
	}
	if len(samples) != len(kinds) {
		t.Errorf("%d samples for %d kinds", len(samples), len(kinds))
	}
	if _, err := kinds.Of(config.Source{}); err == nil || err.Error() != "source: needs one of github, gitlab, git, registry" {
		t.Errorf("Of(no kind) = %v", err)
	}
}

// TestHomepage: the label each kind gives its upstream (what run's labels said before the
// table: changing one changes image digests).
func TestHomepage(t *testing.T) {
	for _, tt := range []struct {
		src  config.Source
		want string
	}{
		{config.Source{GitHub: "acme/app"}, "https://github.com/acme/app"},
		{config.Source{GitHub: "acme/app", API: "https://api.github.com"}, "https://github.com/acme/app"},
		{config.Source{GitHub: "acme/app", API: "https://ghe.example/api/v3/"}, "https://ghe.example/acme/app"},
		{config.Source{GitLab: "g/s/p", Host: "gitlab.com"}, "https://gitlab.com/g/s/p"},
		{config.Source{GitLab: "g/p", Host: "framagit.org"}, "https://framagit.org/g/p"},
		{config.Source{Git: "https://user:pw@git.example/x.git"}, "https://git.example/x.git"},
		{config.Source{Git: "ssh://git@git.example/x.git"}, "ssh://git.example/x.git"},
		{config.Source{Git: "./local/repo"}, "./local/repo"},
		{config.Source{Registry: "docker.io/library/nginx"}, "docker.io/library/nginx"},
	} {
		if got := Homepage(tt.src); got != tt.want {
			t.Errorf("Homepage(%+v) = %q, want %q", tt.src, got, tt.want)
		}
	}
	if got := Homepage(config.Source{}); got != "" {
		t.Errorf("Homepage of a source with no kind = %q, want none", got)
	}
}

// TestKindsAgree: the config loader and discover's constructors accept and reject the same
// values, because the loader runs the table's checks.
func TestKindsAgree(t *testing.T) {
	// rejects is what each kind's source itself refuses to use.
	rejects := map[string]func(config.Source) bool{
		"github": func(s config.Source) bool { return NewGitHub(s.GitHub).err != nil },
		"gitlab": func(s config.Source) bool { return NewGitLab(s.Host, s.GitLab).err != nil },
		"git":    func(s config.Source) bool { return !validGitRemote(s.Git) },
		"registry": func(s config.Source) bool {
			_, err := name.NewRepository(s.Registry)
			return err != nil
		},
	}
	values := map[string][]string{
		"github":   {"foo/bar", "-foo/bar", "a/b/c", "foo", "a..b/c", "foo/.bar", "foo/-bar", strings.Repeat("a", 101) + "/b", "_foo/bar"},
		"gitlab":   {"foo/bar", "-foo/bar", "a/b/c", "foo", "a/../b", "g/-p", "g/.p"},
		"git":      {"https://git.example/x.git", "./x", "-x", "--upload-pack=touch /tmp/p"},
		"registry": {"docker.io/library/nginx", "nginx", "UPPER/x", "-x/y", "r.example:5000/a/b"},
	}
	for _, k := range SourceKinds() {
		for _, v := range values[k.Name] {
			var src config.Source
			*k.Field(&src) = v
			y := strings.Replace(`target: {registry: oci:./mirror}
apps:
  app:
    source: {KEY: 'VALUE'}
    components:
      app: {context: ./ctx}
`, "KEY", k.Name, 1)
			y = strings.Replace(y, "VALUE", v, 1)
			cfg, err := config.Parse("c.yaml", []byte(y), SourceKinds())
			if err == nil {
				src = cfg.Apps[0].Source // with the loader's defaults
			}
			if loaderRejects, srcRejects := err != nil, rejects[k.Name](src); loaderRejects != srcRejects {
				t.Errorf("%s: %q: loader rejects: %v (%v), source rejects: %v", k.Name, v, loaderRejects, err, srcRejects)
			}
		}
	}
	if len(values) != len(SourceKinds()) {
		t.Errorf("values for %d kinds, the table has %d", len(values), len(SourceKinds()))
	}
}

// TestKindsMessages: the messages that list the kinds, whole.
func TestKindsMessages(t *testing.T) {
	kinds := SourceKinds()
	for _, tt := range []struct {
		src  config.Source
		want []string
	}{
		{config.Source{}, []string{": needs exactly one of github: owner/repo, gitlab: group/project, git: URL, registry: image"}},
		{config.Source{Git: "./x", Token: config.Token{None: true}},
			[]string{"token: token is for github and gitlab sources (a registry's credentials come from the Docker config, a git remote's from git)"}},
		{config.Source{GitHub: "acme/app", Insecure: true}, []string{"insecure: insecure is for registry sources"}},
	} {
		var got []string
		for _, fe := range kinds.CheckSource(&tt.src) {
			got = append(got, fe.Field+": "+fe.Msg)
		}
		if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
			t.Errorf("CheckSource(%+v) = %q, want %q", tt.src, got, tt.want)
		}
	}
}
