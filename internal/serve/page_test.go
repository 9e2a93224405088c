package serve

import (
	"bytes"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/archmirror/archmirror/internal/testenv"
)

var pageNow = time.Date(2026, 11, 23, 13, 30, 31, 0, time.UTC)

const (
	pageDigestHello120Amd = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	pageDigestHello120Arm = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	pageDigestHello110Amd = "sha256:3333333333333333333333333333333333333333333333333333333333333333"
	pageDigestHello100Amd = "sha256:4444444444444444444444444444444444444444444444444444444444444444"
	pageDigestBaseAmd     = "sha256:5555555555555555555555555555555555555555555555555555555555555555"
	pageDigestBaseArm     = "sha256:6666666666666666666666666666666666666666666666666666666666666666"
	pageDigestOutlineAmd  = "sha256:7777777777777777777777777777777777777777777777777777777777777777"
	pageDigestOutlineArm  = "sha256:8888888888888888888888888888888888888888888888888888888888888888"
	pageDigestBaseOldAmd  = "sha256:9999999999999999999999999999999999999999999999999999999999999999"

	pageFailedJob   = "hello/hello/1.1.0/linux-arm64"
	pageFailedError = "build hello 1.1.0 linux/arm64: process \"/bin/sh -c wget -O- $URL | tar -xz\" did not complete successfully: exit code: 1\nwget: server returned error: HTTP/1.1 404 Not Found"
	pageFailedLog   = "#5 [2/3] RUN wget -O- https://upstream.example/hello-1.1.0-arm64.tar.gz | tar -xz\n#5 0.212 wget: server returned error: HTTP/1.1 404 Not Found\n#5 ERROR: process did not complete successfully: exit code: 1"
	pageConfigError = "mirror.yaml:12: apps.hello.source.github: \"acme/\" is not owner/repo"
)

func pageTime(d time.Duration) *time.Time { t := pageNow.Add(d); return &t }

// pageFixture is what serve shows after a scheduled run with one failed build, while an
// API-triggered run is going and a reload was refused: "hello" (one component; 1.1.0 has a
// failed arm64 build, 1.0.0 lacks arm64) and "outline" (two components; 0.80.1's outline lacks
// every platform).
func pageFixture() Status {
	platforms := []string{"linux/amd64", "linux/arm64"}
	complete := func(d string) Cell { return Cell{State: CellComplete, Digest: d} }
	return Status{
		Now:         pageNow,
		Schedule:    "0 */6 * * * (UTC)",
		ConfigError: pageConfigError,
		NextRun:     pageNow.Add(2*time.Hour + 10*time.Minute),
		Running: &Run{RunSummary: RunSummary{
			ID: "20261123T132900Z-9f8e7d6c", Trigger: TriggerAPI, Status: Running,
			Queued: pageNow.Add(-92 * time.Second), Started: pageTime(-91 * time.Second),
			Request: Request{Apps: []string{"outline"}},
		}},
		LastRun: &Run{
			RunSummary: RunSummary{
				ID: "20261123T120000Z-1a2b3c4d", Trigger: TriggerSchedule, Status: Failed,
				Queued: pageNow.Add(-90 * time.Minute), Started: pageTime(-90 * time.Minute), Finished: pageTime(-86*time.Minute - 48*time.Second),
				Error:   "1 job failed: " + pageFailedJob,
				Summary: Summary{Built: 3, Failed: 1, Published: 1, Attested: 1},
			},
			Jobs: []Job{
				{ID: "hello/hello/1.2.0/linux-amd64", App: "hello", Component: "hello", Version: "1.2.0", Platform: "linux/amd64", Status: "built", Digest: pageDigestHello120Amd, Seconds: 41},
				{ID: pageFailedJob, App: "hello", Component: "hello", Version: "1.1.0", Platform: "linux/arm64", Status: Failed, Seconds: 12, Error: pageFailedError, LogExcerpt: pageFailedLog},
			},
			Units: []Unit{{App: "hello", Component: "hello", Version: "1.2.0", Status: "published", Digest: "sha256:aaaa", Latest: true}},
		},
		Apps: []App{
			{
				Name: "hello", Platforms: platforms, Latest: "1.2.0", Behind: 2,
				LastError: "job " + pageFailedJob + ": " + pageFailedError,
				Versions: []Version{
					{Version: "1.2.0", Tag: "1.2.0", Latest: true, Components: []Component{{
						Name: "hello", Repo: "registry.example/mirror/hello", Status: "complete", Digest: "sha256:aaaa",
						Cells: map[string]Cell{"linux/amd64": complete(pageDigestHello120Amd), "linux/arm64": complete(pageDigestHello120Arm)},
					}}},
					{Version: "1.1.0", Tag: "1.1.0", Components: []Component{{
						Name: "hello", Repo: "registry.example/mirror/hello", Status: "incomplete", Digest: "sha256:eeee",
						Cells: map[string]Cell{"linux/amd64": complete(pageDigestHello110Amd), "linux/arm64": {State: CellFailed, Error: pageFailedError}},
					}}},
					{Version: "1.0.0", Tag: "1.0.0", Components: []Component{{
						Name: "hello", Repo: "registry.example/mirror/hello", Status: "incomplete", Digest: "sha256:bbbb",
						Cells: map[string]Cell{"linux/amd64": complete(pageDigestHello100Amd), "linux/arm64": {State: CellMissing}},
					}}},
				},
			},
			{
				Name: "outline", Platforms: platforms, Latest: "0.80.2", Behind: 1,
				Versions: []Version{
					{Version: "0.80.2", Tag: "0.80.2", Latest: true, Components: []Component{
						{Name: "outline-base", Repo: "registry.example/mirror/outline-base", Status: "complete", Digest: "sha256:cccc",
							Cells: map[string]Cell{"linux/amd64": complete(pageDigestBaseAmd), "linux/arm64": complete(pageDigestBaseArm)}},
						{Name: "outline", Repo: "registry.example/mirror/outline", Status: "complete", Digest: "sha256:dddd",
							Cells: map[string]Cell{"linux/amd64": complete(pageDigestOutlineAmd), "linux/arm64": complete(pageDigestOutlineArm)}},
					}},
					{Version: "0.80.1", Tag: "0.80.1", Components: []Component{
						{Name: "outline-base", Repo: "registry.example/mirror/outline-base", Status: "incomplete",
							Cells: map[string]Cell{"linux/amd64": complete(pageDigestBaseOldAmd), "linux/arm64": {State: CellMissing}}},
						{Name: "outline", Repo: "registry.example/mirror/outline", Status: "missing",
							Cells: map[string]Cell{"linux/amd64": {State: CellMissing}, "linux/arm64": {State: CellMissing}}},
					}},
				},
			},
		},
	}
}

// pageWantRow is one row of an app table: its cells' states and titles by platform.
type pageWantRow struct {
	version, component string
	latest             bool
	status             string
	states, titles     [2]string // linux/amd64, linux/arm64
}

var pageWantTables = map[string][]pageWantRow{
	"hello": {
		{"1.2.0", "hello", true, "complete", [2]string{"complete", "complete"}, [2]string{pageDigestHello120Amd, pageDigestHello120Arm}},
		{"1.1.0", "hello", false, "incomplete", [2]string{"complete", "failed"}, [2]string{pageDigestHello110Amd, pageFailedError}},
		{"1.0.0", "hello", false, "incomplete", [2]string{"complete", "missing"}, [2]string{pageDigestHello100Amd, "linux/arm64: missing"}},
	},
	"outline": {
		{"0.80.2", "outline-base", true, "complete", [2]string{"complete", "complete"}, [2]string{pageDigestBaseAmd, pageDigestBaseArm}},
		{"0.80.2", "outline", true, "complete", [2]string{"complete", "complete"}, [2]string{pageDigestOutlineAmd, pageDigestOutlineArm}},
		{"0.80.1", "outline-base", false, "incomplete", [2]string{"complete", "missing"}, [2]string{pageDigestBaseOldAmd, "linux/arm64: missing"}},
		{"0.80.1", "outline", false, "missing", [2]string{"missing", "missing"}, [2]string{"linux/amd64: missing", "linux/arm64: missing"}},
	},
}

func renderPage(t *testing.T, st Status) string {
	t.Helper()
	var b bytes.Buffer
	if err := RenderStatus(&b, st); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func parsePage(t *testing.T, s string) *html.Node {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(s))
	if err != nil {
		t.Fatalf("parse page: %v", err)
	}
	return doc
}

func TestRenderStatus(t *testing.T) {
	page := renderPage(t, pageFixture())
	checkPage(t, parsePage(t, page))
	if t.Failed() {
		t.Logf("page:\n%s", page)
	}
}

// checkPage checks the DOM of pageFixture's page, as our parser or a browser built it.
func checkPage(t *testing.T, doc *html.Node) {
	t.Helper()
	if m := domFindAll(doc, func(n *html.Node) bool { return domIsElem(n, "meta") && domAttr(n, "http-equiv") == "refresh" }); len(m) != 1 || domAttr(m[0], "content") != "30" {
		t.Errorf("meta refresh: %d elements", len(m))
	}
	if h := domFindAll(doc, domElem("h1")); len(h) != 1 || domText(h[0]) != "archmirror" {
		t.Errorf("h1 = %d elements", len(h))
	}
	// Offline and inert: no script, no external stylesheet, image or frame, no absolute URL.
	for _, n := range domFindAll(doc, func(n *html.Node) bool { return n.Type == html.ElementNode }) {
		switch n.Data {
		case "script", "link", "img", "iframe", "object", "embed":
			t.Errorf("page has a <%s>", n.Data)
		}
		for _, a := range n.Attr {
			if (a.Key == "href" || a.Key == "src") && !strings.HasPrefix(a.Val, "/") {
				t.Errorf("<%s %s=%q>: not a local path", n.Data, a.Key, a.Val)
			}
		}
	}

	if s := domText(domByID(t, doc, "schedule")); s != "0 */6 * * * (UTC)" {
		t.Errorf("schedule = %q", s)
	}
	last := domByID(t, doc, "last-run")
	if domAttr(last, "data-run-id") != "20261123T120000Z-1a2b3c4d" || domAttr(last, "data-status") != Failed {
		t.Errorf("last run attributes: %v", last.Attr)
	}
	if a := domFindAll(last, domElem("a")); len(a) != 1 || domAttr(a[0], "href") != "/api/v1/runs/20261123T120000Z-1a2b3c4d" {
		t.Errorf("last run link: %d links", len(a))
	}
	for _, want := range []string{"2026-11-23T12:03:43Z", "(1h 26m ago)", "took 3m 12s", "schedule", "3 built, 1 failed, 0 skipped; 1 published, 0 repaired, 1 attested", "1 job failed"} {
		if !strings.Contains(domText(last), want) {
			t.Errorf("last run %q lacks %q", domText(last), want)
		}
	}
	if times := domFindAll(last, domElem("time")); len(times) != 1 || domAttr(times[0], "datetime") != "2026-11-23T12:03:43Z" {
		t.Errorf("last run <time>: %d", len(times))
	}
	if s := domText(domByID(t, doc, "next-run")); s != "2026-11-23T15:40:31Z (in 2h 10m)" {
		t.Errorf("next run = %q", s)
	}
	running := domByID(t, doc, "running-run")
	if domAttr(running, "data-run-id") != "20261123T132900Z-9f8e7d6c" || !strings.Contains(domText(running), "started 2026-11-23T13:29:00Z (1m ago)") || !strings.Contains(domText(running), "api") {
		t.Errorf("running run = %v %q", running.Attr, domText(running))
	}
	if ce := domByID(t, doc, "config-error"); domText(ce) != "config reload refused: "+pageConfigError+"; still running the previous config" || !domHasClass(ce, "config-error") {
		t.Errorf("config error = %q", domText(ce))
	}

	for name, rows := range pageWantTables {
		checkPageTable(t, doc, name, rows)
	}
	if n := len(domFindAll(doc, domElem("table"))); n != len(pageWantTables) {
		t.Errorf("%d tables, want %d", n, len(pageWantTables))
	}
	hello := domByID(t, doc, "app-hello")
	if b := domFindAll(hello, domClass("app-behind")); len(b) != 1 || domText(b[0]) != "2 behind" || domAttr(b[0], "data-behind") != "2" {
		t.Errorf("hello behind: %d", len(b))
	}
	if e := domFindAll(hello, domClass("app-error")); len(e) != 1 || !strings.HasPrefix(domText(e[0]), "job "+pageFailedJob+": build hello 1.1.0") {
		t.Errorf("hello last error: %d", len(e))
	}
	if l := domFindAll(hello, domClass("app-latest")); len(l) != 1 || domText(l[0]) != "latest: 1.2.0" {
		t.Errorf("hello latest: %d", len(l))
	}
	if e := domFindAll(domByID(t, doc, "app-outline"), domClass("app-error")); len(e) != 0 {
		t.Errorf("outline has an error box")
	}

	failures := domFindAll(domByID(t, doc, "failures"), domClass("failure"))
	if len(failures) != 1 {
		t.Fatalf("%d failures, want 1", len(failures))
	}
	f := failures[0]
	if f.Data != "details" || domAttr(f, "data-job") != pageFailedJob || domAttr(f, "data-kind") != "job" || domAttr(f, "data-app") != "hello" || domHasAttr(f, "open") {
		t.Errorf("failure element: <%s %v>", f.Data, f.Attr)
	}
	sum := domFindAll(f, domElem("summary"))
	if len(sum) != 1 || domText(sum[0]) != pageFailedJob+" "+strings.SplitN(pageFailedError, "\n", 2)[0] {
		t.Errorf("failure summary: %d elements, want one reading %q", len(sum), pageFailedJob+" "+strings.SplitN(pageFailedError, "\n", 2)[0])
	}
	if pre := domFindAll(f, domClass("log-excerpt")); len(pre) != 1 || pre[0].Data != "pre" || domRawText(pre[0]) != pageFailedLog {
		t.Errorf("log excerpt: %d", len(pre))
	}
	if full := domFindAll(f, domClass("failure-full")); len(full) != 1 || domRawText(full[0]) != pageFailedError {
		t.Errorf("full error: %d", len(full))
	}
}

func checkPageTable(t *testing.T, doc *html.Node, app string, want []pageWantRow) {
	t.Helper()
	tables := domFindAll(doc, func(n *html.Node) bool { return domIsElem(n, "table") && domAttr(n, "data-app") == app })
	if len(tables) != 1 || !domHasClass(tables[0], "app") {
		t.Errorf("%s: %d tables", app, len(tables))
		return
	}
	multi := app == "outline"
	head := []string{"version", "tag", "status", "linux/amd64", "linux/arm64"}
	if multi {
		head = slices.Insert(head, 1, "component")
	}
	var got []string
	for _, th := range domFindAll(tables[0], domElem("th")) {
		got = append(got, domText(th))
	}
	if !slices.Equal(got, head) {
		t.Errorf("%s: header %q, want %q", app, got, head)
	}
	rows := domFindAll(tables[0], func(n *html.Node) bool { return domIsElem(n, "tr") && domHasAttr(n, "data-version") })
	if len(rows) != len(want) {
		t.Errorf("%s: %d rows, want %d", app, len(rows), len(want))
		return
	}
	for i, r := range rows {
		w := want[i]
		if domAttr(r, "data-version") != w.version || domAttr(r, "data-component") != w.component || domAttr(r, "data-status") != w.status {
			t.Errorf("%s row %d: %v, want %s %s %s", app, i, r.Attr, w.version, w.component, w.status)
		}
		if got := domHasClass(r, "latest") && domAttr(r, "data-latest") == "true" && len(domFindAll(r, domClass("badge"))) == 1; got != w.latest {
			t.Errorf("%s %s %s: latest marker %v, want %v", app, w.version, w.component, got, w.latest)
		}
		tds := domFindAll(r, domElem("td"))
		if len(tds) != len(head) {
			t.Errorf("%s %s %s: %d cells, want %d", app, w.version, w.component, len(tds), len(head))
			continue
		}
		if !strings.HasPrefix(domText(tds[0]), w.version) || (multi && domText(tds[1]) != w.component) {
			t.Errorf("%s row %d: version/component cells %q %q", app, i, domText(tds[0]), domText(tds[1]))
		}
		cells := domFindAll(r, domClass("cell"))
		if len(cells) != 2 {
			t.Errorf("%s %s %s: %d platform cells", app, w.version, w.component, len(cells))
			continue
		}
		for j, c := range cells {
			pl := []string{"linux/amd64", "linux/arm64"}[j]
			if domAttr(c, "data-platform") != pl || domAttr(c, "data-state") != w.states[j] || !domHasClass(c, "cell-"+w.states[j]) {
				t.Errorf("%s %s %s %s: cell %v, want state %s", app, w.version, w.component, pl, c.Attr, w.states[j])
			}
			if domAttr(c, "title") != w.titles[j] {
				t.Errorf("%s %s %s %s: title %q, want %q", app, w.version, w.component, pl, domAttr(c, "title"), w.titles[j])
			}
			if w.states[j] == CellComplete && !strings.Contains(domText(c), strings.TrimPrefix(w.titles[j], "sha256:")[:12]) {
				t.Errorf("%s %s %s %s: %q lacks the short digest", app, w.version, w.component, pl, domText(c))
			}
		}
	}
}

func TestRenderStatusEscapes(t *testing.T) {
	const evil = `<script>alert("x")</script>`
	st := Status{
		Now:         pageNow,
		Schedule:    `@every 6h"><b>`,
		ConfigError: `bad <img src=x onerror=alert(1)>`,
		LastRun: &Run{RunSummary: RunSummary{ID: `r"><script>1</script>`, Status: Failed, Queued: pageNow},
			Apps: []AppError{{App: evil, Error: "discover: <b>502</b>"}},
			Jobs: []Job{{ID: evil + "/c/1.0.0/linux-amd64", App: evil, Status: Failed, Error: "</pre><script>", LogExcerpt: "</pre></details><script>alert(2)</script>"}},
		},
		Apps: []App{{Name: evil, Platforms: []string{`linux/"amd64`}, LastError: evil, Versions: []Version{{
			Version: `1.0.0"onclick="x`, Tag: "1.0.0", Components: []Component{{Name: evil, Cells: map[string]Cell{`linux/"amd64`: {State: CellFailed, Error: `"><script>`}}}},
		}}}},
	}
	page := renderPage(t, st)
	if strings.Contains(page, "<script") || strings.Contains(page, "<img") || strings.Contains(page, "<b>") || strings.Contains(page, `"onclick=`) {
		t.Fatalf("unescaped markup in:\n%s", page)
	}
	doc := parsePage(t, page)
	for _, n := range domFindAll(doc, func(n *html.Node) bool { return n.Type == html.ElementNode }) {
		switch n.Data {
		case "script", "img", "b":
			t.Errorf("page has a <%s>", n.Data)
		}
		for _, a := range n.Attr {
			if strings.HasPrefix(a.Key, "on") {
				t.Errorf("<%s> has %s", n.Data, a.Key)
			}
		}
	}
	tables := domFindAll(doc, func(n *html.Node) bool { return domIsElem(n, "table") && domAttr(n, "data-app") == evil })
	if len(tables) != 1 {
		t.Fatalf("no table with data-app=%q", evil)
	}
	if h := domFindAll(doc, domClass("app-name")); len(h) != 1 || domText(h[0]) != evil {
		t.Errorf("app name not shown as text")
	}
	cells := domFindAll(tables[0], domClass("cell"))
	if len(cells) != 1 || domAttr(cells[0], "data-platform") != `linux/"amd64` || domAttr(cells[0], "title") != `"><script>` {
		t.Errorf("cell attributes not kept verbatim")
	}
	if rows := domFindAll(tables[0], func(n *html.Node) bool { return domHasAttr(n, "data-version") }); len(rows) != 1 || domAttr(rows[0], "data-version") != `1.0.0"onclick="x` {
		t.Errorf("row attributes not kept verbatim")
	}
	if a := domFindAll(domByID(t, doc, "last-run"), domElem("a")); len(a) != 1 || domAttr(a[0], "href") != "/api/v1/runs/r%22%3E%3Cscript%3E1%3C%2Fscript%3E" {
		t.Errorf("run link: %d links, want one to the escaped run id", len(a))
	}
	if ce := domByID(t, doc, "config-error"); !strings.Contains(domText(ce), `bad <img src=x onerror=alert(1)>`) {
		t.Errorf("config error = %q", domText(ce))
	}
	if f := domFindAll(doc, domClass("log-excerpt")); len(f) != 1 || domRawText(f[0]) != st.LastRun.Jobs[0].LogExcerpt {
		t.Errorf("log excerpt not kept verbatim")
	}
	if f := domFindAll(doc, domClass("failure")); len(f) != 2 || domAttr(f[0], "data-kind") != "app" || domAttr(f[1], "data-kind") != "job" {
		t.Errorf("%d failures", len(f))
	}
}

func TestRenderStatusEmpty(t *testing.T) {
	doc := parsePage(t, renderPage(t, Status{Now: pageNow}))
	for id, want := range map[string]string{
		"last-run":    "no run yet",
		"next-run":    "not scheduled",
		"schedule":    "none",
		"no-apps":     "No apps.",
		"no-failures": "No run yet.",
		"rendered":    "rendered 2026-11-23T13:30:31Z · refreshes every 30 s",
	} {
		if got := domText(domByID(t, doc, id)); got != want {
			t.Errorf("#%s = %q, want %q", id, got, want)
		}
	}
	for _, id := range []string{"config-error", "running-run"} {
		if n := domFindAll(doc, func(n *html.Node) bool { return domAttr(n, "id") == id }); len(n) != 0 {
			t.Errorf("#%s shown", id)
		}
	}

	// An app whose cells lack a platform, and no platforms said: the cells' platforms, sorted;
	// a platform a version has no cell for is missing.
	doc = parsePage(t, renderPage(t, Status{Now: pageNow, LastRun: &Run{RunSummary: RunSummary{ID: "r", Status: Succeeded, Queued: pageNow}}, Apps: []App{{Name: "a", Versions: []Version{
		{Version: "2.0.0", Components: []Component{{Name: "a", Cells: map[string]Cell{"linux/arm64": {State: CellComplete, Digest: "sha256:ab"}}}}},
		{Version: "1.0.0", Components: []Component{{Name: "a", Cells: map[string]Cell{"linux/amd64": {State: "building"}}}}},
	}}}}))
	var got []string
	for _, c := range domFindAll(doc, domClass("cell")) {
		got = append(got, domAttr(c, "data-platform")+"="+domAttr(c, "data-state")+"/"+domAttr(c, "class"))
	}
	want := []string{
		"linux/amd64=missing/cell cell-missing", "linux/arm64=complete/cell cell-complete",
		"linux/amd64=building/cell cell-other", "linux/arm64=missing/cell cell-missing",
	}
	if !slices.Equal(got, want) {
		t.Errorf("cells = %q, want %q", got, want)
	}
	if got := domText(domByID(t, doc, "no-failures")); got != "No failures." {
		t.Errorf("#no-failures = %q", got)
	}
}

func TestPageTimes(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{0, "now"},
		{-500 * time.Millisecond, "now"},
		{-3*time.Minute - 59*time.Second, "3m ago"},
		{-45 * time.Second, "45s ago"},
		{2*time.Hour + 10*time.Minute + 30*time.Second, "in 2h 10m"},
		{2 * time.Hour, "in 2h"},
		{-(3*24*time.Hour + 4*time.Hour + 5*time.Minute), "3d 4h ago"},
		{48 * time.Hour, "in 2d"},
	} {
		if got := pageRelative(pageNow, pageNow.Add(c.d)); got != c.want {
			t.Errorf("relative %v = %q, want %q", c.d, got, c.want)
		}
	}
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "0s"},
		{820 * time.Millisecond, "0.8s"},
		{45 * time.Second, "45s"},
		{3*time.Minute + 12*time.Second, "3m 12s"},
		{time.Hour + 5*time.Minute + 9*time.Second, "1h 5m"},
	} {
		if got := pageDuration(c.d); got != c.want {
			t.Errorf("duration %v = %q, want %q", c.d, got, c.want)
		}
	}
}

// TestStatusPageInChromium loads the page in a real browser (headless Chromium), checks the DOM
// it built, and keeps a screenshot in $ARCHMIRROR_ARTIFACTS (else $TMPDIR/archmirror-artifacts).
func TestStatusPageInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	bin := testenv.Chromium(t)
	var mu sync.Mutex
	var requests []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests = append(requests, r.Method+" "+r.URL.Path)
		mu.Unlock()
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := RenderStatus(w, pageFixture()); err != nil {
			t.Error(err)
		}
	}))
	defer srv.Close()

	dom := testenv.DumpDOM(t, bin, srv.URL+"/")
	checkPage(t, parsePage(t, dom))
	if t.Failed() {
		t.Logf("chromium's DOM:\n%s", dom)
	}

	dir := os.Getenv("ARCHMIRROR_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "archmirror-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "status-page.png")
	os.Remove(shot) // a stale one must not pass for this run's
	const width, height = 1280, 1400
	testenv.Screenshot(t, bin, srv.URL+"/", shot, width, height)
	t.Logf("screenshot: %s", shot)
	b, err := os.ReadFile(shot)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 5<<10 || !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("%s: %d bytes, not a PNG of a rendered page", shot, len(b))
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(b))
	if err != nil || cfg.Width != width || cfg.Height != height {
		t.Errorf("%s: %dx%d, %v; want %dx%d", shot, cfg.Width, cfg.Height, err, width, height)
	}

	mu.Lock()
	defer mu.Unlock()
	for _, r := range requests {
		if r != "GET /" && r != "GET /favicon.ico" {
			t.Errorf("the browser asked for %s: the page must need nothing but itself", r)
		}
	}
}

// DOM helpers.

func domFindAll(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	for d := range n.Descendants() {
		if match(d) {
			out = append(out, d)
		}
	}
	return out
}

func domByID(t *testing.T, doc *html.Node, id string) *html.Node {
	t.Helper()
	n := domFindAll(doc, func(n *html.Node) bool { return n.Type == html.ElementNode && domAttr(n, "id") == id })
	if len(n) != 1 {
		t.Fatalf("%d elements with id %q", len(n), id)
	}
	return n[0]
}

func domIsElem(n *html.Node, tag string) bool { return n.Type == html.ElementNode && n.Data == tag }

func domElem(tag string) func(*html.Node) bool {
	return func(n *html.Node) bool { return domIsElem(n, tag) }
}

func domClass(c string) func(*html.Node) bool {
	return func(n *html.Node) bool { return n.Type == html.ElementNode && domHasClass(n, c) }
}

func domHasClass(n *html.Node, c string) bool {
	return slices.Contains(strings.Fields(domAttr(n, "class")), c)
}

func domAttr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func domHasAttr(n *html.Node, key string) bool {
	return slices.ContainsFunc(n.Attr, func(a html.Attribute) bool { return a.Key == key })
}

// text is n's text content with runs of white space made one space, trimmed.
func domText(n *html.Node) string { return strings.Join(strings.Fields(domRawText(n)), " ") }

// domRawText is n's text content as it is.
func domRawText(n *html.Node) string {
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
		}
	}
	return b.String()
}
