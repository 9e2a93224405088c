// Package untrusted renders text that came from elsewhere (an upstream API, a registry, a
// Dockerfile, a build's output) for a message, a log or a terminal: nothing in it may move the
// cursor, retitle the terminal, forge a line or reorder what the reader sees.
//
// Quote is for a value inside a message, Line for unquoted text on one line (a terminal's
// status line), Printable for multi-line text (a build log's tail); FirstLine cuts a
// multi-line message to its headline.
package untrusted

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Quote renders s as a Go-quoted ASCII string: control characters, invalid UTF-8, Unicode
// format characters (bidi overrides and isolates, zero-width marks) and every other non-ASCII
// rune are escaped, so a lookalike ("v\uff12.0.0") shows for what it is. When s is longer
// than max bytes (max > 0), it is cut to at most max on a rune boundary and its full length is
// noted: "abc"… (1234 bytes).
func Quote(s string, max int) string {
	if max <= 0 || len(s) <= max {
		return strconv.QuoteToASCII(s)
	}
	return fmt.Sprintf("%s… (%d bytes)", strconv.QuoteToASCII(s[:cut(s, max)]), len(s))
}

// Printable makes multi-line text safe to print: control characters other than newline and
// tab, and format and separator characters (bidi overrides, U+2028), are escaped as Go
// escapes (\x1b, \u202e); invalid UTF-8 is replaced by U+FFFD.
func Printable(s string) string {
	return escape(s, func(r rune) bool { return r == '\n' || r == '\t' })
}

// Line makes s safe to print unquoted on one line: as Printable, with newlines, tabs and
// carriage returns escaped too, cut to at most max bytes (max > 0) on a rune boundary with
// "…" appended.
func Line(s string, max int) string {
	if max > 0 && len(s) > max {
		s = s[:cut(s, max)] + "…"
	}
	return escape(s, func(rune) bool { return false })
}

// FirstLine is s up to its first newline: a multi-line message's headline, for a status line,
// a table cell or a log attribute. It escapes nothing: print it through Line or Quote.
func FirstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// escape escapes every unsafe rune of s that keep does not keep.
func escape(s string, keep func(rune) bool) string {
	bad := func(r rune) bool { return unsafe(r) && !keep(r) }
	if utf8.ValidString(s) && strings.IndexFunc(s, bad) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		if bad(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// unsafe reports whether r could change how the text around it is shown: a C0 or C1 control
// (ESC, CR, BS, CSI), a format character (U+202E, U+2066–U+2069, U+200E/F, U+200B, U+FEFF),
// or a line or paragraph separator.
func unsafe(r rune) bool {
	return unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp)
}

// cut is the largest rune boundary of s at or below max bytes.
func cut(s string, max int) int {
	i := max
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return i
}
