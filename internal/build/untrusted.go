package build

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/moby/buildkit/frontend/dockerfile/dfgitutil"

	"github.com/archmirror/archmirror/internal/config"
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
		if err := text("build arg "+quote(k), s.Args[k], maxValue, false); err != nil {
			return err
		}
	}
	for _, k := range sortedKeys(s.Labels) {
		if err := text("label "+quote(k), s.Labels[k], maxValue, true); err != nil {
			return err
		}
	}
	if s.Push != "" {
		// BuildKit's image exporter reads "name" as a comma-separated list: a name that is not
		// one plain repository could push elsewhere too.
		if _, err := name.NewRepository(s.Push); err != nil {
			return fmt.Errorf("push %s: not a repository: %w", quote(s.Push), err)
		}
	}
	if s.CacheRef != "" {
		if _, err := name.NewTag(s.CacheRef); err != nil {
			return fmt.Errorf("cache %s: not a tag reference: %w", quote(s.CacheRef), err)
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
		return fmt.Errorf("%s %s is not valid UTF-8: refused", what, quote(s))
	case strings.IndexByte(s, 0) >= 0:
		return fmt.Errorf("%s %s contains a NUL byte: refused", what, quote(s))
	case oneLine && strings.IndexFunc(s, unicode.IsControl) >= 0:
		return fmt.Errorf("%s %s contains control characters: refused", what, quote(s))
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
			return fmt.Errorf("context ref %s %s: refused", quote(r), why)
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
	return quote(id)
}

// quote quotes an untrusted string for a message, escaped, cut to maxQuoted bytes (on a rune
// boundary) with its full length.
func quote(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	cut := maxQuoted
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s… (%d bytes)", strconv.Quote(s[:cut]), len(s))
}

// printable makes text from the build (step names, log lines, BuildKit's errors, which quote
// the Dockerfile) safe to print on a terminal: control characters other than newline and tab
// are escaped, invalid UTF-8 is replaced.
func printable(s string) string {
	if utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' }) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		if unicode.IsControl(r) && r != '\n' && r != '\t' {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// printableError is an error whose message is printable(err's), with err still inside it for
// errors.Is and errors.As.
type printableError struct{ err error }

func (e printableError) Error() string { return printable(e.err.Error()) }
func (e printableError) Unwrap() error { return e.err }

// cleanError is err, or a printableError around it when its message needs escaping.
func cleanError(err error) error {
	if err == nil {
		return nil
	}
	if printable(err.Error()) == err.Error() {
		return err
	}
	return printableError{err}
}

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }
