package build

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/archmirror/archmirror/internal/config"
)

// Apply returns dockerfile with patches applied in order. where names the Dockerfile in
// errors (its path, or for a git context "URL#ref:subdir/Dockerfile"). A patch that changes
// nothing is an error, so that upstream drift fails the job instead of passing silently.
//
// Patches work on physical lines: each regex sees one line without its line ending ("\r\n"
// files stay "\r\n"), and continuation lines are not joined, so a pattern can anchor to the
// end of a physical line ("tar -xvz ; \\$"). Two rules follow the Dockerfile's logical lines:
//   - insert-after puts its line after the whole instruction the matched line belongs to, so a
//     match inside a "\"-continued RUN does not split the RUN (comment and blank lines inside
//     the continuation are part of it, as in BuildKit's parser; "# escape=`" is honoured);
//   - unpin-digests only rewrites lines that start a FROM instruction.
//
// Heredoc bodies (RUN <<EOF) are not recognised: they are ordinary lines to these rules.
func Apply(dockerfile []byte, patches []config.Patch, where string) ([]byte, error) {
	f := splitLines(string(dockerfile))
	for i, p := range patches {
		var err error
		switch {
		case p.UnpinDigests:
			err = f.unpinDigests()
		case p.InsertAfter != nil:
			err = f.insertAfter(p.InsertAfter)
		case p.Replace != nil:
			err = f.replace(p.Replace)
		default:
			err = fmt.Errorf("sets no kind (want unpin-digests, insert-after or replace)")
		}
		if err != nil {
			return nil, fmt.Errorf("patch %d (%s): %w of %s", i+1, describe(p), err, where)
		}
	}
	return []byte(f.String()), nil
}

// describe names a patch the way the config spells it.
func describe(p config.Patch) string {
	switch {
	case p.UnpinDigests:
		return "unpin-digests"
	case p.InsertAfter != nil:
		return "insert-after " + strconv.Quote(p.InsertAfter.Match)
	case p.Replace != nil:
		return "replace " + strconv.Quote(p.Replace.Match)
	}
	return "empty"
}

// line is one physical line: its text and its ending ("\n", "\r\n", or "" for a last line
// without a newline).
type line struct {
	text, eol string
}

type file struct {
	lines  []line
	eol    string // the file's line ending, for inserted lines
	escape byte   // the escape character, '\\' unless a "# escape=`" directive says otherwise
}

func splitLines(s string) *file {
	f := &file{eol: "\n", escape: '\\'}
	for s != "" {
		i := strings.IndexByte(s, '\n')
		var l line
		if i < 0 {
			l, s = line{text: s}, ""
		} else {
			l, s = line{text: s[:i], eol: "\n"}, s[i+1:]
		}
		if t, ok := strings.CutSuffix(l.text, "\r"); ok && l.eol != "" {
			l.text, l.eol = t, "\r\n"
		}
		f.lines = append(f.lines, l)
	}
	if len(f.lines) > 0 && f.lines[0].eol == "\r\n" {
		f.eol = "\r\n"
	}
	f.escape = escapeDirective(f.lines)
	return f
}

func (f *file) String() string {
	var b strings.Builder
	for _, l := range f.lines {
		b.WriteString(l.text)
		b.WriteString(l.eol)
	}
	return b.String()
}

var directiveRE = regexp.MustCompile(`^#\s*([a-zA-Z][a-zA-Z0-9_-]*)\s*=\s*(.*?)\s*$`)

// escapeDirective reads the parser directives at the top of a Dockerfile (before any blank,
// comment or instruction line) and returns the escape character they set.
func escapeDirective(lines []line) byte {
	for _, l := range lines {
		m := directiveRE.FindStringSubmatch(l.text)
		if m == nil {
			break
		}
		if strings.EqualFold(m[1], "escape") && m[2] == "`" {
			return '`'
		}
	}
	return '\\'
}

// continues reports whether l ends with the escape character (trailing blanks allowed), so
// that the instruction goes on on the next line.
func (f *file) continues(l line) bool {
	t := strings.TrimRight(l.text, " \t")
	return t != "" && t[len(t)-1] == f.escape && !isComment(l)
}

func isComment(l line) bool { return strings.HasPrefix(strings.TrimLeft(l.text, " \t"), "#") }
func isBlank(l line) bool   { return strings.TrimSpace(l.text) == "" }

// instructionEnd returns the index of the last physical line of the instruction that line i
// is part of (i itself unless i ends with the escape character).
func (f *file) instructionEnd(i int) int {
	for f.continues(f.lines[i]) {
		j := i + 1
		for j < len(f.lines) && (isBlank(f.lines[j]) || isComment(f.lines[j])) {
			j++
		}
		if j == len(f.lines) {
			return len(f.lines) - 1
		}
		i = j
	}
	return i
}

// fromDigestRE finds the "@sha256:<hex>" of the image in a FROM line: the instruction, its
// flags (--platform=…), then the image reference; "AS name" and anything else stays.
var fromDigestRE = regexp.MustCompile(`(?i)^(\s*FROM\s+(?:--\S+\s+)*[^\s@]+)@sha256:[0-9a-f]{64}(\s|$)`)

func (f *file) unpinDigests() error {
	n := 0
	for i, l := range f.lines {
		if m := fromDigestRE.FindStringSubmatchIndex(l.text); m != nil {
			// keep the reference (group 1) and what follows the digest (from group 2 on)
			f.lines[i].text = l.text[:m[3]] + l.text[m[4]:]
			n++
		}
	}
	if n == 0 {
		return fmt.Errorf("no FROM line has an @sha256 digest")
	}
	return nil
}

func (f *file) insertAfter(p *config.InsertAfter) error {
	re, err := compiled(p.MatchRE, p.Match)
	if err != nil {
		return err
	}
	var at []int // instruction ends to insert after, ascending, no duplicates
	for i, l := range f.lines {
		if !re.MatchString(l.text) {
			continue
		}
		end := f.instructionEnd(i)
		if len(at) == 0 || at[len(at)-1] != end {
			at = append(at, end)
		}
	}
	if len(at) == 0 {
		return fmt.Errorf("matched no line")
	}
	out := make([]line, 0, len(f.lines)+len(at))
	next := 0
	for i, l := range f.lines {
		out = append(out, l)
		if next < len(at) && at[next] == i {
			next++
			if l.eol == "" { // the last line had no newline: give it one, keep none at the end
				out[len(out)-1].eol = f.eol
				out = append(out, line{text: p.Line})
			} else {
				out = append(out, line{text: p.Line, eol: f.eol})
			}
		}
	}
	f.lines = out
	return nil
}

func (f *file) replace(p *config.Replace) error {
	re, err := compiled(p.MatchRE, p.Match)
	if err != nil {
		return err
	}
	with := literalVars(re, p.With)
	n := 0
	for i, l := range f.lines {
		if re.MatchString(l.text) {
			f.lines[i].text = re.ReplaceAllString(l.text, with)
			n++
		}
	}
	if n == 0 {
		return fmt.Errorf("matched no line")
	}
	return nil
}

// compiled returns re, or compiles src when the patch did not come through the config loader.
func compiled(re *regexp.Regexp, src string) (*regexp.Regexp, error) {
	if re != nil {
		return re, nil
	}
	re, err := regexp.Compile(src)
	if err != nil {
		return nil, fmt.Errorf("bad regex: %w", err)
	}
	return re, nil
}

var refRE = regexp.MustCompile(`\$(\$|\{([a-zA-Z0-9_]*)\}|[a-zA-Z0-9_]+)`)

// literalVars escapes the "$" of every reference in a replacement template that does not name a
// group of re, so that "$1" and "${name}" expand while a shell variable such as
// "$MOSTLYMATTER_BINARY" or "${PGID}" stays as written (regexp.Expand would make it "").
func literalVars(re *regexp.Regexp, with string) string {
	groups := map[string]bool{}
	for i, n := range re.SubexpNames() {
		groups[strconv.Itoa(i)] = true
		if n != "" {
			groups[n] = true
		}
	}
	return refRE.ReplaceAllStringFunc(with, func(ref string) string {
		if ref == "$$" {
			return ref
		}
		name := strings.Trim(ref[1:], "{}")
		if groups[name] {
			return ref
		}
		return "$" + ref
	})
}
