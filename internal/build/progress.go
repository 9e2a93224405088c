package build

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/util/progress/progressui"
	digest "github.com/opencontainers/go-digest"

	"github.com/archmirror/archmirror/internal/untrusted"
)

// progress receives one solve's status: it prints it as BuildKit's plain progress to a log,
// and keeps what a failure message needs (each step's name, error and last log lines).
type progress struct {
	ch   chan *client.SolveStatus
	done chan struct{}

	tail   int
	onStep func(string) // told each step's name as it starts, made one printable line; may be nil
	order  []digest.Digest
	steps  map[digest.Digest]*step
}

type step struct {
	name, err string
	started   bool
	partial   []byte   // an unterminated last line
	lines     []string // the last lines, at most tail
}

func newProgress(log io.Writer, tail int) *progress {
	p := &progress{
		ch:    make(chan *client.SolveStatus),
		done:  make(chan struct{}),
		tail:  tail,
		steps: map[digest.Digest]*step{},
	}
	// plain mode never fails (it needs no terminal)
	d, _ := progressui.NewDisplay(log, progressui.PlainMode)
	display := make(chan *client.SolveStatus)
	go func() {
		defer close(p.done)
		printed := make(chan struct{})
		go func() {
			defer close(printed)
			// Background: the display must drain the channel and print the last lines (the
			// error) even when the build's context is cancelled.
			_, _ = d.UpdateFrom(context.Background(), display)
		}()
		for st := range p.ch {
			p.record(st)
			display <- st
		}
		close(display)
		<-printed
	}()
	return p
}

// wait returns once the solve has closed the channel and everything is printed.
func (p *progress) wait() { <-p.done }

func (p *progress) record(st *client.SolveStatus) {
	for _, v := range st.Vertexes {
		s := p.step(v.Digest)
		if p.onStep != nil && v.Started != nil && v.Completed == nil && !s.started {
			s.started = true
			// The name is a Dockerfile line with its args expanded, the upstream's text: it
			// goes to a terminal's live line, where an escape could retitle it or forge lines.
			p.onStep(untrusted.Line(v.Name, maxStepName))
		}
		s.name = v.Name
		if v.Error != "" {
			s.err = v.Error
		}
	}
	for _, l := range st.Logs {
		p.step(l.Vertex).add(l.Data, p.tail)
	}
}

func (p *progress) step(d digest.Digest) *step {
	s, ok := p.steps[d]
	if !ok {
		s = &step{}
		p.steps[d] = s
		p.order = append(p.order, d)
	}
	return s
}

func (s *step) add(data []byte, tail int) {
	data = append(s.partial, data...)
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		s.lines = append(s.lines, lastBytes(strings.TrimRight(string(data[:i]), "\r")))
		data = data[i+1:]
	}
	if len(s.lines) > tail {
		s.lines = s.lines[len(s.lines)-tail:]
	}
	if len(data) > maxLine { // a runaway line without a newline
		data = data[len(data)-maxLine:]
	}
	s.partial = bytes.Clone(data)
}

// maxStepName bounds a step's name as the live progress line shows it (it fits the line to
// the terminal's width anyway).
const maxStepName = 512

// maxLine bounds a log line kept for an error message: the build's output is the upstream's,
// and one line of it may be megabytes long.
const maxLine = 4096

// lastBytes keeps the end of a long line, where the error usually is.
func lastBytes(l string) string {
	if len(l) <= maxLine {
		return l
	}
	return "…" + l[len(l)-maxLine:]
}

// explain wraps a solve error with the step that failed and the end of its log. Call it after
// wait.
func (p *progress) explain(err error) error {
	var failed *step
	for _, d := range p.order {
		s := p.steps[d]
		if s.err == "" || strings.Contains(s.err, "context canceled") {
			continue
		}
		failed = s
		break
	}
	if failed == nil {
		return err
	}
	lines := slices.Clone(failed.lines)
	if len(failed.partial) > 0 {
		lines = append(lines, string(failed.partial))
	}
	if len(lines) > p.tail {
		lines = lines[len(lines)-p.tail:]
	}
	// The step's name is a Dockerfile line and its log the build's output, both the
	// upstream's: neither may carry a terminal escape into a report.
	name := untrusted.Printable(failed.name)
	for i, l := range lines {
		lines[i] = untrusted.Printable(l)
	}
	if len(lines) == 0 {
		return fmt.Errorf("%s: %w", name, err)
	}
	return fmt.Errorf("%s: %w\n  %s", name, err, strings.Join(lines, "\n  "))
}
