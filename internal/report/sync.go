package report

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/archmirror/archmirror/internal/attest"
	"github.com/archmirror/archmirror/internal/publish"
	"github.com/archmirror/archmirror/internal/run"
)

// SyncSummary writes what a sync did: every job with its outcome, duration and digest, every
// published version, the totals, and for each failure its cause and its full log's path.
func SyncSummary(w io.Writer, r run.Report) error {
	if len(r.Jobs) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "JOB\tSTATUS\tTIME\tDIGEST\tBUILDER")
		for _, j := range r.Jobs {
			node := j.Builder
			if len(j.Retried) > 0 {
				node += " (after " + strings.Join(j.Retried, ", ") + " died)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%.1fs\t%s\t%s\n", j.ID, j.Status, j.Seconds, short(j.Digest), node)
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
	fmt.Fprintf(w, "built %d, failed %d, skipped %d; published %d, repaired %d; %s%.1fs\n",
		count[run.JobBuilt], count[run.JobFailed], count[run.JobSkipped], pub[publish.Published], pub[publish.Repaired],
		attested(r.Attestations), r.Finished.Sub(r.Started).Seconds())
	if len(r.Jobs) == 0 && len(r.Units) == 0 && !r.Plan.Failed() && len(r.Held) == 0 {
		fmt.Fprintln(w, "nothing to build: every version in the window is complete")
	}
	for _, h := range r.Held {
		fmt.Fprintf(w, "left alone: %s: another run (%s) holds its lease until %s\n", h.App, h.Holder, h.Until.Format(time.RFC3339))
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
	attestErrors(w, r.Attestations)
	return nil
}

// attested sums up the attest stage: "attested 3 versions (12 bundles added); ".
func attested(rs []run.AttestResult) string {
	if len(rs) == 0 {
		return ""
	}
	versions, added := 0, 0
	for _, a := range rs {
		if a.Added > 0 {
			versions++
			added += a.Added
		}
	}
	return fmt.Sprintf("attested %d of %d versions (%d bundles added); ", versions, len(rs), added)
}

func attestErrors(w io.Writer, rs []run.AttestResult) {
	for _, a := range rs {
		if a.Error != "" {
			fmt.Fprintf(w, "error: attest %s %s: %s\n", a.Component, a.Version, oneLine(a.Error))
		}
	}
}

// AttestSummary prints what a standalone attest run did, one line per version.
func AttestSummary(w io.Writer, r run.AttestReport) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "APP\tCOMPONENT\tVERSION\tINDEX\tADDED\tPRESENT\tRESULT")
	for _, a := range r.Results {
		res := "ok"
		if a.Error != "" {
			res = "error"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\n", a.App, a.Component, a.Version, short(a.Digest), a.Added, a.Present, res)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Results) == 0 {
		fmt.Fprintln(w, "nothing to attest: no complete version in the window")
	}
	for _, a := range r.Plan.Apps {
		if a.Error != "" {
			fmt.Fprintf(w, "error: %s: %s\n", a.Name, oneLine(a.Error))
		}
	}
	attestErrors(w, r.Results)
	return nil
}

// VerifyTable prints one row per subject (the index, then each platform image) and one column
// per attestation, then what is wrong with the index itself.
func VerifyTable(w io.Writer, r attest.Report) error {
	fmt.Fprintln(w, r.Ref)
	if r.Error != "" {
		_, err := fmt.Fprintf(w, "error: %s\n", r.Error)
		return err
	}
	cols := attest.Shown
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "SUBJECT\tDIGEST")
	for _, c := range cols {
		fmt.Fprint(tw, "\t"+c.Name)
	}
	fmt.Fprintln(tw)
	var problems []string
	for _, s := range r.Subjects {
		fmt.Fprintf(tw, "%s\t%s", s.Subject, short(s.Digest))
		for _, c := range cols {
			ch := s.Checks[c.Type]
			switch {
			case ch.OK:
				fmt.Fprint(tw, "\tok")
			case ch.Error == "missing":
				fmt.Fprint(tw, "\tMISSING")
			default:
				fmt.Fprint(tw, "\tINVALID")
				problems = append(problems, fmt.Sprintf("%s %s: %s", s.Subject, strings.ToLower(c.Name), oneLine(ch.Error)))
			}
		}
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range r.Missing {
		fmt.Fprintf(w, "missing platform: %s\n", p)
	}
	for _, e := range r.Extra {
		fmt.Fprintf(w, "unexpected index entry: %s\n", e)
	}
	for _, p := range problems {
		fmt.Fprintf(w, "invalid: %s\n", p)
	}
	verdict := "verified"
	if !r.OK() {
		verdict = "NOT verified"
	}
	_, err := fmt.Fprintln(w, verdict)
	return err
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
