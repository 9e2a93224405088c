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
