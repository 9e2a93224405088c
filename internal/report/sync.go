package report

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/archmirror/archmirror/internal/publish"
	"github.com/archmirror/archmirror/internal/run"
)

// SyncSummary writes what a sync did: every job with its outcome, duration and digest, every
// published version, the totals, and for each failure its cause and its full log's path.
func SyncSummary(w io.Writer, r run.Report) error {
	if len(r.Jobs) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "JOB\tSTATUS\tTIME\tDIGEST")
		for _, j := range r.Jobs {
			fmt.Fprintf(tw, "%s\t%s\t%.1fs\t%s\n", j.ID, j.Status, j.Seconds, short(j.Digest))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	if len(r.Units) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "APP\tCOMPONENT\tVERSION\tRESULT\tINDEX")
		for _, u := range r.Units {
			res := string(u.Status)
			if u.Error != "" {
				res = "error"
			}
			idx := short(u.Digest)
			if u.Latest {
				idx += " (latest)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.App, u.Component, u.Version, res, idx)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	count := map[run.JobStatus]int{}
	for _, j := range r.Jobs {
		count[j.Status]++
	}
	pub := map[publish.Status]int{}
	for _, u := range r.Units {
		pub[u.Status]++
	}
	fmt.Fprintf(w, "built %d, failed %d, skipped %d; published %d, repaired %d; %.1fs\n",
		count[run.JobBuilt], count[run.JobFailed], count[run.JobSkipped], pub[publish.Published], pub[publish.Repaired],
		r.Finished.Sub(r.Started).Seconds())
	if len(r.Jobs) == 0 && !r.Plan.Failed() {
		fmt.Fprintln(w, "nothing to build: every version in the window is complete")
	}
	for _, a := range r.Plan.Apps {
		if a.Error != "" {
			fmt.Fprintf(w, "error: %s: %s\n", a.Name, oneLine(a.Error))
		}
	}
	for _, j := range r.Jobs {
		if j.Status == run.JobFailed {
			fmt.Fprintf(w, "failed: %s: %s\n", j.ID, lastLines(j.Error, 6))
			if j.Log != "" {
				fmt.Fprintf(w, "  full log: %s\n", j.Log)
			}
		}
	}
	for _, u := range r.Units {
		if u.Error != "" {
			fmt.Fprintf(w, "error: publish %s %s: %s\n", u.Component, u.Version, oneLine(u.Error))
		}
	}
	return nil
}

func short(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}

// lastLines keeps the end of a long error (a build's tail is where the cause is), indented.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{lines[0], "…"}, lines[len(lines)-n+1:]...)
	}
	return strings.Join(lines, "\n    ")
}
