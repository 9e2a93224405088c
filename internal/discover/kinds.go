package discover

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/untrusted"
)

// Kind is one kind of source: the key that selects it in a config, the one check of its
// settings (the loader runs it), how to build its Source and how to name its upstream.
// A new kind is one row of Kinds, its Source, and its key in config.Source.
type Kind struct {
	Name     string                       // the key under source: that selects the kind ("github")
	Want     string                       // what that key holds, for messages ("owner/repo")
	Field    func(*config.Source) *string // that key's field
	Token    bool                         // takes token: (an API that knows tokens)
	Insecure bool                         // takes insecure:
	// Check finds what is wrong with a source of this kind, and fills its defaults. Each
	// problem's Field is a key under source:.
	Check func(*config.Source) []config.FieldError
	// New builds the source; opts are the config's own settings, then the caller's.
	New func(src config.Source, opts ...Option) Source
	// Homepage is the upstream's URL for the org.opencontainers.image.source label and the
	// mirror predicate. It never carries credentials.
	Homepage func(config.Source) string
}

// Kinds is the table of source kinds, in the order messages list them. It is what the config
// loader checks sources with: config.Load(path, discover.SourceKinds()).
type Kinds []Kind

// SourceKinds returns the table of every kind of source.
func SourceKinds() Kinds {
	return Kinds{
		{
			Name: "github", Want: "owner/repo", Field: func(s *config.Source) *string { return &s.GitHub }, Token: true,
			Check: checkGitHub, New: newGitHub, Homepage: githubHomepage,
		},
		{
			Name: "gitlab", Want: "group/project", Field: func(s *config.Source) *string { return &s.GitLab }, Token: true,
			Check: checkGitLab, New: newGitLab, Homepage: gitlabHomepage,
		},
		{
			Name: "git", Want: "URL", Field: func(s *config.Source) *string { return &s.Git },
			Check: checkGit, New: newGit, Homepage: gitHomepage,
		},
		{
			Name: "registry", Want: "image", Field: func(s *config.Source) *string { return &s.Registry }, Insecure: true,
			Check: checkRegistry, New: newRegistry, Homepage: func(s config.Source) string { return s.Registry },
		},
	}
}

// Of returns the kind of src: the one kind whose key it sets.
func (ks Kinds) Of(src config.Source) (Kind, error) {
	var set []Kind
	for _, k := range ks {
		if *k.Field(&src) != "" {
			set = append(set, k)
		}
	}
	if len(set) != 1 {
		return Kind{}, fmt.Errorf("source: needs one of %s", strings.Join(ks.names(func(Kind) bool { return true }), ", "))
	}
	return set[0], nil
}

// CheckSource is config.SourceKinds: everything the loader cannot know of src without its
// kind. It fills the kind's defaults.
func (ks Kinds) CheckSource(src *config.Source) []config.FieldError {
	k, err := ks.Of(*src)
	if err != nil {
		var usage []string
		for _, k := range ks {
			usage = append(usage, k.Name+": "+k.Want)
		}
		return []config.FieldError{{Msg: "needs exactly one of " + strings.Join(usage, ", ")}}
	}
	errs := k.Check(src)
	if (src.Token.IsSet() || src.Token.None) && !k.Token {
		errs = append(errs, config.FieldError{Field: "token", Msg: fmt.Sprintf(
			"token is for %s sources (a registry's credentials come from the Docker config, a git remote's from git)",
			and(ks.names(func(k Kind) bool { return k.Token })))})
	}
	if src.Insecure && !k.Insecure {
		errs = append(errs, config.FieldError{Field: "insecure", Msg: fmt.Sprintf(
			"insecure is for %s sources", and(ks.names(func(k Kind) bool { return k.Insecure })))})
	}
	return errs
}

// Homepage names src's upstream for labels (see Kind.Homepage). Every kind of the table has
// one (TestKindsComplete); a source of no kind, which the loader never lets through, has none.
func Homepage(src config.Source) string {
	k, err := SourceKinds().Of(src)
	if err != nil {
		return ""
	}
	return k.Homepage(src)
}

func (ks Kinds) names(keep func(Kind) bool) []string {
	var out []string
	for _, k := range ks {
		if keep(k) {
			out = append(out, k.Name)
		}
	}
	return out
}

// and joins names as prose: "a", "a and b", "a, b and c".
func and(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

func problem(field, format string, a ...any) config.FieldError {
	return config.FieldError{Field: field, Msg: fmt.Sprintf(format, a...)}
}

func checkGitHub(s *config.Source) []config.FieldError {
	var errs []config.FieldError
	if !validGitHubRepo(s.GitHub) {
		errs = append(errs, problem("github", "%s: want owner/repo", untrusted.Quote(s.GitHub, 80)))
	}
	if s.Host != "" {
		errs = append(errs, problem("host", "host is for gitlab; GitHub Enterprise takes api: https://ghe.example/api/v3"))
	}
	return errs
}

func checkGitLab(s *config.Source) []config.FieldError {
	var errs []config.FieldError
	if !validGitLabProject(s.GitLab) {
		errs = append(errs, problem("gitlab", "%s: want group/project (subgroups allowed)", untrusted.Quote(s.GitLab, 80)))
	}
	if s.Host == "" {
		s.Host = DefaultGitLabHost
	}
	if !hostRE.MatchString(s.Host) {
		errs = append(errs, problem("host", "%s is not a host name", untrusted.Quote(s.Host, 80)))
	}
	return errs
}

func checkGit(s *config.Source) []config.FieldError {
	if !validGitRemote(s.Git) {
		return []config.FieldError{problem("git", "a git URL or path cannot start with '-'")}
	}
	return nil
}

func checkRegistry(s *config.Source) []config.FieldError {
	if _, err := name.NewRepository(s.Registry); err != nil {
		return []config.FieldError{problem("registry", "%s is not an image repository: %v", untrusted.Quote(s.Registry, 80), err)}
	}
	return nil
}

func newGitHub(src config.Source, opts ...Option) Source {
	if src.API != "" {
		opts = append([]Option{WithAPI(src.API)}, opts...)
	}
	return NewGitHub(src.GitHub, opts...)
}

func newGitLab(src config.Source, opts ...Option) Source {
	if src.API != "" {
		opts = append([]Option{WithBaseURL(src.API)}, opts...) // scheme://host of a self-hosted GitLab
	}
	return NewGitLab(src.Host, src.GitLab, opts...)
}

func newGit(src config.Source, opts ...Option) Source { return NewGit(src.Git, opts...) }

func newRegistry(src config.Source, opts ...Option) Source {
	if src.Insecure {
		opts = append([]Option{WithInsecure(true)}, opts...)
	}
	return NewRegistry(src.Registry, opts...)
}

func githubHomepage(s config.Source) string {
	base := "https://github.com"
	if s.API != "" && !strings.Contains(s.API, "api.github.com") {
		base = strings.TrimSuffix(strings.TrimSuffix(s.API, "/"), "/api/v3")
	}
	return base + "/" + s.GitHub
}

func gitlabHomepage(s config.Source) string { return "https://" + s.Host + "/" + s.GitLab }

// gitHomepage is the remote without user info.
func gitHomepage(s config.Source) string {
	if i := strings.Index(s.Git, "@"); i >= 0 && strings.Contains(s.Git[:i], "://") {
		return s.Git[:strings.Index(s.Git, "://")+3] + s.Git[i+1:]
	}
	return s.Git
}
