package report

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestProgress(t *testing.T) {
	var out syncBuffer
	p := NewProgress(&out, 60)
	p.JobStarted("app/c/1.0.0/linux-amd64")
	p.JobStarted("app/c/1.0.0/linux-arm64")
	p.JobStep("app/c/1.0.0/linux-arm64", "[2/2] RUN wget -q -O - https://example.invalid/a-very-long-url/that/does/not/fit.tar.gz")
	p.JobDone("app/c/1.0.0/linux-amd64", "built sha256:abc", nil)
	p.JobDone("app/c/1.0.0/linux-arm64", "failed", errors.New("wget: 404 Not Found\nmore"))
	p.Close()
	s := out.String()
	for _, want := range []string{"✔ app/c/1.0.0/linux-amd64", "built sha256:abc", "✘ app/c/1.0.0/linux-arm64", "failed: wget: 404", "[2/2] RUN wget", "\x1b["} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%q", want, s)
		}
	}
	for _, line := range strings.Split(s, "\n") {
		if i := strings.LastIndex(line, "\x1b[J"); i >= 0 {
			line = line[i+3:]
		}
		if n := len([]rune(line)); n > 60 {
			t.Errorf("line of %d runes does not fit 60 columns: %q", n, line)
		}
	}
	if strings.Contains(s, "more") {
		t.Error("a multi-line error spilled over its line")
	}
}

// A step's name is the upstream's text: on the live line, an escape sequence that would
// retitle the terminal and a carriage return that would overwrite the line are escaped.
func TestProgressEscapesStep(t *testing.T) {
	var out syncBuffer
	p := NewProgress(&out, 200)
	p.JobStarted("app/c/1.0.0/linux-amd64")
	p.JobStep("app/c/1.0.0/linux-amd64", "RUN x \x1b]0;pwned\x07\r✔ app/c/9.9.9 built\u202e")
	p.mu.Lock()
	p.redraw() // what the next tick draws
	p.mu.Unlock()
	p.JobDone("app/c/1.0.0/linux-amd64", "failed", errors.New("step \x1b[2Jgone"))
	p.Close()
	s := out.String()
	for _, want := range []string{`RUN x \x1b]0;pwned\a\r✔ app/c/9.9.9 built\u202e`, `failed: step \x1b[2Jgone`} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%q", want, s)
		}
	}
	// the only escapes are the progress block's own (cursor up, erase down)
	rest := strings.NewReplacer("\x1b[1A\x1b[J", "", "\x1b[J", "").Replace(s)
	if strings.ContainsAny(rest, "\x1b\x07\r\u202e") {
		t.Errorf("raw escapes reached the terminal: %q", rest)
	}
}
