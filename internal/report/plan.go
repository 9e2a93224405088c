// Package report renders stage results for people (tables) and machines (JSON).
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/archmirror/archmirror/internal/discover"
	"github.com/archmirror/archmirror/internal/plan"
	"github.com/archmirror/archmirror/internal/untrusted"
)

// maxSkipped is how many skipped tags per app the table lists; --json has them all.
const maxSkipped = 8

// PlanTable writes the plan as a table: every version of every app, what the target holds, what
// will be built, which version is latest, why tags were skipped and which apps failed.
func PlanTable(w io.Writer, p plan.Plan) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "APP\tVERSION\tUPSTREAM TAG\tCOMPONENT\tSTATE\tPLATFORMS")
	for _, a := range p.Apps {
		if a.Error != "" {
			fmt.Fprintf(tw, "%s\t-\t-\t-\tERROR\t%s\n", a.Name, oneLine(a.Error))
			continue
		}
		if len(a.Versions) == 0 {
			fmt.Fprintf(tw, "%s\t-\t-\t-\tno versions\t%d tags skipped\n", a.Name, len(a.Skipped))
		}
		for i, v := range a.Versions {
			app := a.Name
			if i > 0 {
				app = ""
			}
			ver := v.Version
			if v.Latest {
				ver += " (latest)"
			}
			for j, c := range v.Components {
				if j > 0 {
					app, ver = "", ""
				}
				tag := v.Tag
				if j > 0 {
					tag = ""
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", app, ver, tag, c.Component, c.Status, platforms(c))
			}
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, a := range p.Apps {
		writeSkipped(w, a.Name, a.Skipped)
	}
	return summary(w, p)
}

func platforms(c plan.ComponentReport) string {
	switch c.Status {
	case plan.Complete:
		return strings.Join(c.Present, " ")
	case plan.Incomplete:
		return fmt.Sprintf("has %s; build %s", strings.Join(c.Present, " "), strings.Join(c.Missing, " "))
	}
	return "build " + strings.Join(c.Missing, " ")
}

func writeSkipped(w io.Writer, app string, skipped []discover.Skip) {
	if len(skipped) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%s: %d upstream tags skipped\n", app, len(skipped))
	byReason := map[string][]string{}
	var reasons []string // in the order upstream listed them, then the commonest first
	for _, s := range skipped {
		if _, ok := byReason[s.Reason]; !ok {
			reasons = append(reasons, s.Reason)
		}
		byReason[s.Reason] = append(byReason[s.Reason], s.Tag)
	}
	sort.SliceStable(reasons, func(i, j int) bool { return len(byReason[reasons[i]]) > len(byReason[reasons[j]]) })
	for i, r := range reasons {
		if i == maxSkipped {
			fmt.Fprintf(w, "  … and %d more (see --json)\n", len(reasons)-maxSkipped)
			break
		}
		tags := byReason[r]
		if len(tags) == 1 {
			fmt.Fprintf(w, "  %s: %s\n", quoteAll(tags)[0], r)
			continue
		}
		list := strings.Join(quoteAll(tags[:min(len(tags), 3)]), ", ")
		if len(tags) > 3 {
			list += fmt.Sprintf(" and %d more", len(tags)-3)
		}
		fmt.Fprintf(w, "  %s: %s\n", r, list)
	}
}

// quoteAll shows tags with %q: they are untrusted and may hold control characters.
func quoteAll(tags []string) []string {
	out := make([]string, len(tags))
	for i, t := range tags {
		out[i] = untrusted.Quote(t, 60)
	}
	return out
}

func summary(w io.Writer, p plan.Plan) error {
	failed := 0
	for _, a := range p.Apps {
		if a.Error != "" {
			failed++
		}
	}
	_, err := fmt.Fprintf(w, "\n%d jobs to build in %d stage(s); %d app(s), %d failed\n", len(p.Jobs), p.Stages(), len(p.Apps), failed)
	for _, a := range p.Apps {
		if a.Error != "" {
			fmt.Fprintf(w, "error: %s: %s\n", a.Name, oneLine(a.Error))
		}
	}
	return err
}

// oneLine puts a message (which may quote the upstream's text) on one printable line.
func oneLine(s string) string { return strings.ReplaceAll(untrusted.Printable(s), "\n", "; ") }

// JSON writes v indented.
func JSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// JSONCompact writes v on one line (GitHub Actions outputs are single lines).
func JSONCompact(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}
