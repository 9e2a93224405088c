package history_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/archmirror/archmirror/internal/serve/history"
)

// run stands in for serve.Run: the fields the store's users read, in the same JSON shape.
type run struct {
	ID      string     `json:"id"`
	Status  string     `json:"status"`
	Queued  time.Time  `json:"queued"`
	Started *time.Time `json:"started,omitempty"`
	Error   string     `json:"error,omitempty"`
}

func runID(r run) string { return r.ID }

// brief stands in for serve.RunSummary: what a list shows of a run.
type brief struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

func summarize(r run) brief { return brief{ID: r.ID, Status: r.Status} }

func briefIDs(bs []brief) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.ID
	}
	return out
}

// id is the ID of the i-th run: "20261123T133000Z-00000000" plus i seconds, with a suffix.
func id(i int) string {
	t := time.Date(2026, 11, 23, 13, 30, 0, 0, time.UTC).Add(time.Duration(i) * time.Second)
	return fmt.Sprintf("%s-%08x", t.Format("20060102T150405Z"), i)
}

func open(t *testing.T, path string, keep int) *history.Store[run, brief] {
	t.Helper()
	s, err := history.Open(path, keep, time.Second, runID, summarize)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// put puts runs with IDs id(i) for each i, in that order.
func put(t *testing.T, s *history.Store[run, brief], is ...int) {
	t.Helper()
	for _, i := range is {
		if err := s.Put(run{ID: id(i), Status: "succeeded"}); err != nil {
			t.Fatal(err)
		}
	}
}

func ids(runs []run) []string {
	out := make([]string, len(runs))
	for i, r := range runs {
		out[i] = r.ID
	}
	return out
}

func idsOf(is ...int) []string {
	out := make([]string, len(is))
	for j, i := range is {
		out[j] = id(i)
	}
	return out
}

func TestList(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "history.db"), 0)
	put(t, s, 3, 0, 4, 1, 2) // out of order: the IDs, not the puts, order the history

	tests := []struct {
		name   string
		limit  int
		before string
		want   []string
	}{
		{"all", 0, "", idsOf(4, 3, 2, 1, 0)},
		{"limit", 2, "", idsOf(4, 3)},
		{"page 2", 2, id(3), idsOf(2, 1)},
		{"page 3", 2, id(1), idsOf(0)},
		{"past the oldest", 2, id(0), nil},
		{"before an absent ID", 10, id(2) + "x", idsOf(2, 1, 0)},
		{"before a later ID", 3, id(99), idsOf(4, 3, 2)},
		{"before everything", 3, "1", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.List(tt.limit, tt.before)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ids(got), tt.want) {
				t.Errorf("List(%d, %q) = %v, want %v", tt.limit, tt.before, ids(got), tt.want)
			}
		})
	}
}

func TestListDefaultLimit(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "history.db"), 0)
	for i := range history.DefaultLimit + 5 {
		put(t, s, i)
	}
	got, err := s.List(0, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != history.DefaultLimit || got[0].ID != id(history.DefaultLimit+4) {
		t.Errorf("List(0, \"\") = %d runs from %s, want %d from %s", len(got), got[0].ID, history.DefaultLimit, id(history.DefaultLimit+4))
	}
}

func TestGet(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "history.db"), 0)
	queued := time.Date(2026, 11, 23, 13, 30, 31, 0, time.UTC)
	want := run{ID: id(1), Status: "failed", Queued: queued, Started: &queued, Error: "boom"}
	if err := s.Put(want); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		id    string
		found bool
	}{
		{"present", id(1), true},
		{"absent", id(2), false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, found, err := s.Get(tt.id)
			if err != nil {
				t.Fatal(err)
			}
			if found != tt.found {
				t.Fatalf("Get(%q) found = %v, want %v", tt.id, found, tt.found)
			}
			if !found {
				if got != (run{}) {
					t.Errorf("Get(%q) = %+v, want the zero run", tt.id, got)
				}
				return
			}
			if got.ID != want.ID || got.Status != want.Status || !got.Queued.Equal(want.Queued) ||
				got.Started == nil || !got.Started.Equal(*want.Started) || got.Error != want.Error {
				t.Errorf("Get(%q) = %+v, want %+v", tt.id, got, want)
			}
		})
	}
}

// TestPutReplaces follows one run through its statuses: each Put replaces the last.
func TestPutReplaces(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "history.db"), 0)
	put(t, s, 0, 2)
	for _, status := range []string{"queued", "running", "succeeded"} {
		if err := s.Put(run{ID: id(1), Status: status}); err != nil {
			t.Fatal(err)
		}
		got, found, err := s.Get(id(1))
		if err != nil || !found || got.Status != status {
			t.Fatalf("after Put(%s): Get = %+v, %v, %v", status, got, found, err)
		}
		all, err := s.List(0, "")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids(all), idsOf(2, 1, 0)) {
			t.Fatalf("after Put(%s): List = %v", status, ids(all))
		}
	}
}

func TestPutEmptyID(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "history.db"), 0)
	err := s.Put(run{Status: "queued"})
	if err == nil || !strings.Contains(err.Error(), "empty ID") {
		t.Fatalf("Put of an empty ID: err = %v, want one about the empty ID", err)
	}
	if all, _ := s.List(0, ""); len(all) != 0 {
		t.Errorf("List = %v, want nothing", ids(all))
	}
}

func TestRetention(t *testing.T) {
	tests := []struct {
		name string
		keep int
		puts []int
		want []string
	}{
		{"under keep", 3, []int{0, 1}, idsOf(1, 0)},
		{"at keep", 3, []int{0, 1, 2}, idsOf(2, 1, 0)},
		{"oldest go", 3, []int{0, 1, 2, 3, 4}, idsOf(4, 3, 2)},
		{"by ID, not by put", 3, []int{4, 3, 2, 1, 0}, idsOf(4, 3, 2)},
		{"replace does not trim", 2, []int{0, 1, 1, 1}, idsOf(1, 0)},
		{"keep 1", 1, []int{0, 1, 2}, idsOf(2)},
		{"keep < 1 means the default", 0, []int{0, 1, 2}, idsOf(2, 1, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t, filepath.Join(t.TempDir(), "history.db"), tt.keep)
			put(t, s, tt.puts...)
			got, err := s.List(1000, "")
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ids(got), tt.want) {
				t.Errorf("List = %v, want %v", ids(got), tt.want)
			}
		})
	}
}

func TestRetentionDefault(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "history.db"), -1)
	if s.Keep() != history.DefaultKeep {
		t.Fatalf("Keep() = %d, want %d", s.Keep(), history.DefaultKeep)
	}
	for i := range history.DefaultKeep + 3 {
		put(t, s, i)
	}
	for i, want := range []bool{false, false, false, true} {
		if _, found, err := s.Get(id(i)); err != nil || found != want {
			t.Errorf("Get(%s) found = %v, %v; want %v", id(i), found, err, want)
		}
	}
}

// TestReopen is the restart: a new Open of the file finds everything the last one put.
func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "history.db")
	s, err := history.Open(path, 3, time.Second, runID, summarize)
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, 0, 1, 2)
	if err := s.Put(run{ID: id(3), Status: "running"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, path, 3)
	got, err := s.List(0, "")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(got), idsOf(3, 2, 1)) || got[0].Status != "running" {
		t.Errorf("after reopening: List = %+v", got)
	}
	// The keep of the new Open applies from its first Put.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path, 2)
	put(t, s, 4)
	if got, _ := s.List(0, ""); !slices.Equal(ids(got), idsOf(4, 3)) {
		t.Errorf("after reopening with keep 2: List = %v", ids(got))
	}
}

func TestOpenModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	path := filepath.Join(dir, "history.db")
	open(t, path, 0)
	for _, tt := range []struct {
		path string
		mode os.FileMode
	}{{dir, 0o700 | os.ModeDir}, {path, 0o600}} {
		fi, err := os.Stat(tt.path)
		if err != nil {
			t.Fatal(err)
		}
		// The umask can only take bits away.
		if fi.Mode()&^tt.mode != 0 {
			t.Errorf("%s: mode %v, want at most %v", tt.path, fi.Mode(), tt.mode)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	notDB := filepath.Join(dir, "not-a-db")
	if err := os.WriteFile(notDB, []byte(strings.Repeat("not a bbolt file\n", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
		id   func(run) string
	}{
		{"no ID function", filepath.Join(dir, "x.db"), nil},
		{"not a bbolt file", notDB, runID},
		{"directory is a file", filepath.Join(file, "history.db"), runID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := history.Open(tt.path, 0, time.Second, tt.id, summarize)
			if err == nil {
				_ = s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tt.path) {
				t.Errorf("error %q does not name %s", err, tt.path)
			}
		})
	}
}

// TestOpenInUse opens a file that another store holds: the second Open gives up after its timeout.
func TestOpenInUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.db")
	first := open(t, path, 0)

	const timeout = 200 * time.Millisecond
	start := time.Now()
	s, err := history.Open(path, 0, timeout, runID, summarize)
	elapsed := time.Since(start)
	if err == nil {
		_ = s.Close()
		t.Fatal("second Open succeeded")
	}
	if !errors.Is(err, history.ErrInUse) || !strings.Contains(err.Error(), "in use by another archmirror serve") ||
		!strings.Contains(err.Error(), path) {
		t.Errorf("err = %v, want ErrInUse naming %s", err, path)
	}
	// bbolt retries the lock every 50ms and gives up when the next retry would pass the timeout.
	if elapsed < timeout/2 || elapsed > timeout+2*time.Second {
		t.Errorf("second Open took %s, want about %s", elapsed, timeout)
	}

	// Once the first lets go, the file opens.
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	open(t, path, 0)
}

// TestCorrupt writes garbage under a key with raw bbolt: reads skip it, Get names it.
func TestCorrupt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.db")
	s, err := history.Open(path, 0, time.Second, runID, summarize)
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, 0, 2)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("runs"))
		if b == nil {
			return errors.New("no bucket runs")
		}
		if err := b.Put([]byte(id(1)), []byte("{not json")); err != nil {
			return err
		}
		return b.Put([]byte(id(3)), []byte(`{"id": 3}`)) // JSON, but not a run
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, path, 0)
	for _, i := range []int{1, 3} {
		_, _, err := s.Get(id(i))
		if err == nil || !strings.Contains(err.Error(), id(i)) {
			t.Errorf("Get(%s) err = %v, want one naming the ID", id(i), err)
		}
	}
	if _, found, err := s.Get(id(2)); err != nil || !found {
		t.Errorf("Get(%s) = %v, %v; want the run", id(2), found, err)
	}
	got, err := s.List(0, "")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(got), idsOf(2, 0)) {
		t.Errorf("List = %v, want %v", ids(got), idsOf(2, 0))
	}
	if got, _ := s.List(1, ""); !slices.Equal(ids(got), idsOf(2)) {
		t.Errorf("List(1) = %v, want %v", ids(got), idsOf(2))
	}
	latest, found, err := s.Latest(nil)
	if err != nil || !found || latest.ID != id(2) {
		t.Errorf("Latest = %s, %v, %v; want %s", latest.ID, found, err, id(2))
	}
	// A Put over a corrupt entry repairs it.
	put(t, s, 1)
	if _, found, err := s.Get(id(1)); err != nil || !found {
		t.Errorf("Get(%s) after Put = %v, %v", id(1), found, err)
	}
}

func TestLatest(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "history.db"), 0)
	for i, status := range []string{"succeeded", "failed", "succeeded", "cancelled", "running"} {
		if err := s.Put(run{ID: id(i), Status: status}); err != nil {
			t.Fatal(err)
		}
	}
	is := func(statuses ...string) func(run) bool {
		return func(r run) bool { return slices.Contains(statuses, r.Status) }
	}
	tests := []struct {
		name  string
		match func(run) bool
		want  string // "" for none
	}{
		{"any", nil, id(4)},
		{"succeeded", is("succeeded"), id(2)},
		{"finished", is("succeeded", "failed", "cancelled"), id(3)},
		{"failed", is("failed"), id(1)},
		{"none", is("queued"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, found, err := s.Latest(tt.match)
			if err != nil {
				t.Fatal(err)
			}
			if found != (tt.want != "") || got.ID != tt.want {
				t.Errorf("Latest = %q, %v; want %q", got.ID, found, tt.want)
			}
		})
	}

	empty := open(t, filepath.Join(t.TempDir(), "history.db"), 0)
	if got, found, err := empty.Latest(nil); err != nil || found || got.ID != "" {
		t.Errorf("Latest of an empty store = %+v, %v, %v", got, found, err)
	}
}

func TestClose(t *testing.T) {
	s, err := history.Open(filepath.Join(t.TempDir(), "history.db"), 0, time.Second, runID, summarize)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := s.Close(); err != nil {
			t.Fatalf("Close #%d: %v", i+1, err)
		}
	}
	if err := s.Put(run{ID: id(0)}); err == nil {
		t.Error("Put after Close succeeded")
	}
	if _, _, err := s.Get(id(0)); err == nil {
		t.Error("Get after Close succeeded")
	}
	if _, err := s.List(0, ""); err == nil {
		t.Error("List after Close succeeded")
	}
	if _, _, err := s.Latest(nil); err == nil {
		t.Error("Latest after Close succeeded")
	}
}

// TestConcurrent puts and reads from several goroutines; run it with -race.
func TestConcurrent(t *testing.T) {
	const writers, perWriter, keep = 4, 25, 40
	s := open(t, filepath.Join(t.TempDir(), "history.db"), keep)

	var wg sync.WaitGroup
	errs := make(chan error, writers*perWriter*4)
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				r := run{ID: id(w*perWriter + i), Status: "queued"}
				if err := s.Put(r); err != nil {
					errs <- err
					return
				}
				r.Status = "succeeded"
				if err := s.Put(r); err != nil {
					errs <- err
					return
				}
			}
		})
		wg.Go(func() {
			for range perWriter {
				runs, err := s.List(10, "")
				if err != nil {
					errs <- err
					return
				}
				if !slices.IsSortedFunc(runs, func(a, b run) int { return strings.Compare(b.ID, a.ID) }) {
					errs <- fmt.Errorf("List not newest first: %v", ids(runs))
				}
				if _, _, err := s.Latest(func(r run) bool { return r.Status == "succeeded" }); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	all, err := s.List(1000, "")
	if err != nil {
		t.Fatal(err)
	}
	want := make([]string, 0, keep)
	for i := writers*perWriter - 1; i >= writers*perWriter-keep; i-- {
		want = append(want, id(i))
	}
	if !slices.Equal(ids(all), want) {
		t.Errorf("after the writers: List = %v, want %v", ids(all), want)
	}
	for _, r := range all {
		if r.Status != "succeeded" {
			t.Errorf("%s: status %s, want succeeded", r.ID, r.Status)
		}
	}
}

// TestSummaries: summaries page like List, follow Put's replacements and the retention.
func TestSummaries(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "history.db"), 4)
	put(t, s, 0, 1, 2, 3, 4)
	if err := s.Put(run{ID: id(2), Status: "failed"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Summaries(2, "")
	if err != nil || !slices.Equal(briefIDs(got), idsOf(4, 3)) {
		t.Fatalf("Summaries(2, \"\") = %v, %v; want %v", briefIDs(got), err, idsOf(4, 3))
	}
	got, err = s.Summaries(0, id(3))
	if err != nil || !slices.Equal(briefIDs(got), idsOf(2, 1)) { // 0 is beyond the keep of 4
		t.Fatalf("Summaries(0, %s) = %v, %v; want %v", id(3), briefIDs(got), err, idsOf(2, 1))
	}
	if got[0].Status != "failed" {
		t.Errorf("summary of a replaced run: %+v, want status failed", got[0])
	}
}

// TestSummariesOfAnOlderFile: a file without summaries (an older archmirror's), or with values
// an older archmirror added since, gets its summaries at Open.
func TestSummariesOfAnOlderFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.db")
	rawPut := func(is ...int) {
		t.Helper()
		db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		err = db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("runs"))
			if err != nil {
				return err
			}
			for _, i := range is {
				if err := b.Put([]byte(id(i)), []byte(`{"id": "`+id(i)+`", "status": "succeeded"}`)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	rawPut(0, 1)
	s, err := history.Open(path, 0, time.Second, runID, summarize)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Summaries(0, ""); err != nil || !slices.Equal(briefIDs(got), idsOf(1, 0)) {
		t.Errorf("Summaries of an older file = %v, %v; want %v", briefIDs(got), err, idsOf(1, 0))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rawPut(2)
	s = open(t, path, 0)
	if got, err := s.Summaries(0, ""); err != nil || !slices.Equal(briefIDs(got), idsOf(2, 1, 0)) {
		t.Errorf("Summaries after an older archmirror's Put = %v, %v; want %v", briefIDs(got), err, idsOf(2, 1, 0))
	}
}
