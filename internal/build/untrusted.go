package build

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/moby/buildkit/frontend/dockerfile/dfgitutil"

	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/redact"
	"github.com/archmirror/archmirror/internal/untrusted"
)

// Every string of a Spec may carry upstream text: the version and tag are in the job ID, the
// labels, and the context and build args they were rendered into. Discovery lets through only
// valid OCI tags, but a Spec can also come from elsewhere (a CI matrix row, a test, a future
// source), so the builder checks again before anything is read, sent or quoted.
const (
	// maxJobID bounds a job ID: "app/component/version/os-arch" is far shorter.
	maxJobID = 512
	// maxValue bounds a build arg, a label and the context: each is one rendered template.
	maxValue = config.MaxRendered
	// maxQuoted is how much of a refused string an error quotes.
	maxQuoted = 64
)

// checkStrings refuses a Spec whose strings could not reach buildkitd intact (not UTF-8, a
// NUL), could forge lines in a label or a log (control characters), or are too long to be
// what they claim. Build arg values may span lines; nothing else may.
func checkStrings(s Spec) error {
	if err := text("job ID", s.JobID, maxJobID, true); err != nil {
		return err
	}
	if err := text("context", s.Context, maxValue, true); err != nil {
		return err
	}
	for _, k := range sortedKeys(s.Args) {
		if err := text("build arg "+untrusted.Quote(k, maxQuoted), s.Args[k], maxValue, false); err != nil {
			return err
		}
	}
	for _, k := range sortedKeys(s.Labels) {
		if err := text("label "+untrusted.Quote(k, maxQuoted), s.Labels[k], maxValue, true); err != nil {
			return err
		}
	}
	if s.Push != "" {
		// BuildKit's image exporter reads "name" as a comma-separated list: a name that is not
		// one plain repository could push elsewhere too.
		if _, err := name.NewRepository(s.Push); err != nil {
			return fmt.Errorf("push %s: not a repository: %w", untrusted.Quote(s.Push, maxQuoted), err)
		}
	}
	if s.CacheRef != "" {
		if _, err := name.NewTag(s.CacheRef); err != nil {
			return fmt.Errorf("cache %s: not a tag reference: %w", untrusted.Quote(s.CacheRef, maxQuoted), err)
		}
	}
	return text("layout", s.Layout, maxValue, true)
}

// text checks one string; what names it in the error.
func text(what, s string, max int, oneLine bool) error {
	switch {
	case len(s) > max:
		return fmt.Errorf("%s is %d bytes, more than %d: refused", what, len(s), max)
	case !utf8.ValidString(s):
		return fmt.Errorf("%s %s is not valid UTF-8: refused", what, untrusted.Quote(s, maxQuoted))
	case strings.IndexByte(s, 0) >= 0:
		return fmt.Errorf("%s %s contains a NUL byte: refused", what, untrusted.Quote(s, maxQuoted))
	case oneLine && strings.IndexFunc(s, unicode.IsControl) >= 0:
		return fmt.Errorf("%s %s contains control characters: refused", what, untrusted.Quote(s, maxQuoted))
	}
	return nil
}

// checkGitRef refuses a git context whose ref could be read as something else: a ref git
// itself would refuse (check-ref-format), or one starting with "-" (an option to git fetch).
func checkGitRef(g *dfgitutil.GitRef) error {
	if r := g.Ref; r != "" {
		var why string
		switch {
		case strings.HasPrefix(r, "-"):
			why = `starts with "-"`
		case strings.Contains(r, ".."):
			why = `contains ".."`
		case strings.Contains(r, "@{"):
			why = `contains "@{"`
		case strings.IndexFunc(r, unicode.IsControl) >= 0:
			why = "contains control characters"
		case strings.ContainsAny(r, " ~^:?*[\\"):
			why = `contains one of " ~^:?*[\"`
		case strings.HasSuffix(r, "/") || strings.HasSuffix(r, ".") || strings.HasSuffix(r, ".lock") || strings.Contains(r, "//") || strings.HasPrefix(r, "/"):
			why = "is not a valid git ref name"
		}
		if why != "" {
			return fmt.Errorf("context ref %s %s: refused", untrusted.Quote(r, maxQuoted), why)
		}
	}
	// The subdirectory needs no check: BuildKit's parser cleans it to a path inside the
	// repository ("../../etc" is "etc"), and buildkitd resolves it inside the checkout.
	return nil
}

// jobName is the job ID as errors start with it: as it is when it passed checkStrings, else
// quoted and cut short, so that a hostile ID cannot bloat or forge a report.
func jobName(id string) string {
	if text("", id, maxJobID, true) == nil {
		return id
	}
	return untrusted.Quote(id, maxQuoted)
}

// printableError is an error whose message is err's made safe to print and record: URL user
// info redacted (redact.Value: a git context's user name may be a token, and
// BuildKit's or git's messages may quote it), control characters escaped (untrusted.Printable).
// err is still inside it for errors.Is and errors.As.
type printableError struct{ err error }

func (e printableError) Error() string { return safeText(e.err.Error()) }
func (e printableError) Unwrap() error { return e.err }

func safeText(s string) string { return untrusted.Printable(redact.Value(s)) }

// cleanError is err, or a printableError around it when its message needs redacting or
// escaping.
func cleanError(err error) error {
	if err == nil {
		return nil
	}
	if safeText(err.Error()) == err.Error() {
		return err
	}
	return printableError{err}
}

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }
