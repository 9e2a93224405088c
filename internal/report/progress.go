package report

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/archmirror/archmirror/internal/untrusted"
)

// Progress shows running jobs on a terminal: one line per job with its current build step and
// elapsed time, redrawn in place; a finished job becomes a permanent line above them. It
// implements run.Progress. Use it only on a terminal; elsewhere the logs say the same.
type Progress struct {
	w     io.Writer
	width int

	mu      sync.Mutex
	running []*jobLine
	drawn   int // lines of the running block on screen
	stop    chan struct{}
	done    chan struct{}
}

type jobLine struct {
	id, step string
	start    time.Time
}

// NewProgress starts redrawing w (a terminal of width columns) until Close.
func NewProgress(w io.Writer, width int) *Progress {
	if width < 40 {
		width = 100
	}
	p := &Progress{w: w, width: width, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				p.mu.Lock()
				p.redraw()
				p.mu.Unlock()
			}
		}
	}()
	return p
}

// JobStarted adds a running job.
func (p *Progress) JobStarted(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.running = append(p.running, &jobLine{id: id, step: "starting", start: time.Now()})
	p.redraw()
}

// JobStep sets a running job's current step. The step is the upstream's text (a Dockerfile
// line): it is shown escaped, on one line.
func (p *Progress) JobStep(id, step string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, j := range p.running {
		if j.id == id {
			j.step = step
		}
	}
}

// JobDone prints the job's outcome above the running block.
func (p *Progress) JobDone(id, status string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var took time.Duration
	for i, j := range p.running {
		if j.id == id {
			took = time.Since(j.start)
			p.running = append(p.running[:i], p.running[i+1:]...)
			break
		}
	}
	p.clear()
	mark := "✔"
	if err != nil {
		mark = "✘"
	}
	line := fmt.Sprintf("%s %s  %5.1fs  %s", mark, untrusted.Line(id, 0), took.Seconds(), untrusted.Line(status, 0))
	if err != nil {
		line += ": " + untrusted.Line(untrusted.FirstLine(err.Error()), 0)
	}
	fmt.Fprintln(p.w, p.fit(line))
	p.redraw()
}

// Close stops redrawing and removes the running block.
func (p *Progress) Close() {
	close(p.stop)
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
}

func (p *Progress) clear() {
	if p.drawn > 0 {
		fmt.Fprintf(p.w, "\x1b[%dA\x1b[J", p.drawn)
		p.drawn = 0
	}
}

func (p *Progress) redraw() {
	p.clear()
	spin := `|/-\`[time.Now().UnixMilli()/200%4]
	for _, j := range p.running {
		fmt.Fprintln(p.w, p.fit(fmt.Sprintf("%c %s  %5.1fs  %s", spin, untrusted.Line(j.id, 0), time.Since(j.start).Seconds(), untrusted.Line(j.step, 0))))
	}
	p.drawn = len(p.running)
}

func (p *Progress) fit(s string) string {
	if r := []rune(s); len(r) > p.width-1 {
		return string(r[:p.width-2]) + "…"
	}
	return s
}
