package untrusted

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestQuote(t *testing.T) {
	long := strings.Repeat("é", 50) // 100 bytes, 2 a rune
	for _, tc := range []struct {
		name, in string
		max      int
		want     string
	}{
		{"plain", "v1.2.3", 64, `"v1.2.3"`},
		{"OSC title", "a\x1b]0;pwned\x07b", 64, `"a\x1b]0;pwned\ab"`},
		{"CSI", "\x1b[2J\x1b[1;1H", 64, `"\x1b[2J\x1b[1;1H"`},
		{"CR forges a line", "ok\rFAIL", 64, `"ok\rFAIL"`},
		{"newline", "a\nb", 64, `"a\nb"`},
		{"NUL", "a\x00b", 64, `"a\x00b"`},
		{"C1 CSI", "a\u009b2Jb", 64, `"a\u009b2Jb"`},
		{"bidi override", "txt.\u202eexe", 64, `"txt.\u202eexe"`},
		{"bidi isolates", "\u2066a\u2067b\u2068c\u2069", 64, `"\u2066a\u2067b\u2068c\u2069"`},
		{"LRM RLM", "\u200ea\u200f", 64, `"\u200ea\u200f"`},
		{"zero width and BOM", "a\u200bb\ufeff", 64, `"a\u200bb\ufeff"`},
		{"line separator", "a\u2028b", 64, `"a\u2028b"`},
		{"invalid UTF-8", "a\xffb", 64, `"a\xffb"`},
		{"lookalikes escaped", "v\uff12.0.0 déjà", 64, `"v\uff12.0.0 d\u00e9j\u00e0"`},
		{"cut on a rune boundary", long, 11, `"\u00e9\u00e9\u00e9\u00e9\u00e9"… (100 bytes)`},
		{"exactly max", "abcd", 4, `"abcd"`},
		{"no limit", "éé", 0, `"\u00e9\u00e9"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Quote(tc.in, tc.max); got != tc.want {
				t.Errorf("Quote(%q, %d) = %s, want %s", tc.in, tc.max, got, tc.want)
			}
		})
	}
}

func TestPrintable(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"plain keeps newlines and tabs", "step 1\n\tok\n", "step 1\n\tok\n"},
		{"OSC title", "\x1b]0;pwned\x07", `\x1b]0;pwned\a`},
		{"CR", "100%\rdone", `100%\rdone`},
		{"NUL", "a\x00b", `a\x00b`},
		{"bidi override", "a\u202eb\u2066c", `a\u202eb\u2066c`},
		{"LRM RLM", "\u200e\u200f", `\u200e\u200f`},
		{"invalid UTF-8 replaced", "a\xff\xfeb", "a\uFFFDb"},
		{"letters stay", "naïve ✔", "naïve ✔"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Printable(tc.in); got != tc.want {
				t.Errorf("Printable(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestLine(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		max      int
		want     string
	}{
		{"plain", "[2/3] RUN make", 80, "[2/3] RUN make"},
		{"OSC title and CR", "RUN x \x1b]0;pwned\x07\rFAKE", 80, `RUN x \x1b]0;pwned\a\rFAKE`},
		{"newline and tab", "a\nb\tc", 80, `a\nb\tc`},
		{"bidi", "a\u202eb", 80, `a\u202eb`},
		{"invalid UTF-8", "a\xffb", 80, "a\uFFFDb"},
		{"cut on a rune boundary", strings.Repeat("é", 10), 5, "éé…"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Line(tc.in, tc.max)
			if got != tc.want {
				t.Errorf("Line(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
			}
			if !utf8.ValidString(got) {
				t.Errorf("Line(%q) = %q is not valid UTF-8", tc.in, got)
			}
		})
	}
}

func TestFirstLine(t *testing.T) {
	for in, want := range map[string]string{"": "", "one": "one", "one\ntwo": "one", "\nrest": "", "a\r\nb": "a\r"} {
		if got := FirstLine(in); got != want {
			t.Errorf("FirstLine(%q) = %q, want %q", in, got, want)
		}
	}
}
