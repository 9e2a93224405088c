// Package history keeps the run history of archmirror serve in one bbolt file, so that a restart
// keeps it, with bounded retention.
//
// The store is generic over the value it keeps, JSON-encoded, and keyed by an ID that a function
// given to Open reads from each value; beside each value it keeps the value's summary (what a
// list shows), made by another function given to Open, so that a list reads small summaries and
// never decodes the values. It is generic so that package serve can use it for its serve.Run
// without an import cycle:
//
//	runs, err := history.Open(path, keep, 5*time.Second, func(r serve.Run) string { return r.ID }, serve.Summarize)
//
// IDs must sort lexically in time order ("20261123T133031Z-1a2b3c4d" does): they are the bbolt keys,
// so a cursor walks the history in time order, and "newest" and "oldest" mean the highest and the
// lowest ID.
package history

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Defaults for the zero values of Open's keep and timeout and of List's limit.
const (
	DefaultKeep    = 500
	DefaultTimeout = 5 * time.Second
	DefaultLimit   = 50
)

// ErrInUse is the error (wrapped) of an Open whose file another process holds open.
var ErrInUse = errors.New("in use by another archmirror serve")

// bucket holds every value, keyed by its ID; summaries holds the summary of each, by the same ID.
var (
	bucket    = []byte("runs")
	summaries = []byte("summaries")
)

// Store keeps values of type T (serve.Run in practice), and a summary of type S of each, in a bbolt
// file: at most Keep of them, newest first on reads. It is safe for concurrent use by goroutines;
// only one process can have the file open at a time.
type Store[T, S any] struct {
	db      *bolt.DB
	path    string
	keep    int
	id      func(T) string
	summary func(T) S
}

// Open opens the store at path, creating the file (mode 0600) and its directory (mode 0700) when
// they do not exist. It waits at most timeout for another process to release the file (timeout < 1
// means DefaultTimeout) and then fails with an error that wraps ErrInUse. The store keeps at most
// keep values (keep < 1 means DefaultKeep); id returns a value's ID and summary its summary. A file
// written without summaries (by an older archmirror) gets them now, from its values.
func Open[T, S any](path string, keep int, timeout time.Duration, id func(T) string, summary func(T) S) (*Store[T, S], error) {
	if id == nil {
		return nil, fmt.Errorf("history %s: no ID function", path)
	}
	if summary == nil {
		return nil, fmt.Errorf("history %s: no summary function", path)
	}
	if keep < 1 {
		keep = DefaultKeep
	}
	if timeout < 1 {
		timeout = DefaultTimeout
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("history %s: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("history %s: %w (its lock was not released within %s)", path, ErrInUse, timeout)
	}
	if err != nil {
		return nil, fmt.Errorf("history %s: %w", path, err)
	}
	s := &Store[T, S]{db: db, path: path, keep: keep, id: id, summary: summary}
	if err := db.Update(s.prepare); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("history %s: %w", path, err)
	}
	return s, nil
}

// prepare creates the buckets, and makes the summaries again from the values when their keys do
// not match (a file from before summaries, or one an older archmirror added runs to since).
func (s *Store[T, S]) prepare(tx *bolt.Tx) error {
	b, err := tx.CreateBucketIfNotExists(bucket)
	if err != nil {
		return err
	}
	if sb := tx.Bucket(summaries); sb != nil && sameKeys(b, sb) {
		return nil
	} else if sb != nil {
		if err := tx.DeleteBucket(summaries); err != nil {
			return err
		}
	}
	sb, err := tx.CreateBucket(summaries)
	if err != nil {
		return err
	}
	return b.ForEach(func(k, data []byte) error {
		var v T
		if json.Unmarshal(data, &v) != nil {
			return nil // List skips it too
		}
		sum, err := json.Marshal(s.summary(v))
		if err != nil {
			return fmt.Errorf("%q: encode summary: %w", k, err)
		}
		return sb.Put(bytes.Clone(k), sum)
	})
}

// sameKeys says whether b's keys look like a's: the same first and last ones. It reads two of
// a's pages, not all of them (a walk of a's keys would map most of the file into memory). An older
// archmirror that wrote to the file since added runs, so the last keys differ; it could also have
// replaced a run, whose summary then stays as it was.
func sameKeys(a, b *bolt.Bucket) bool {
	ca, cb := a.Cursor(), b.Cursor()
	af, _ := ca.First()
	bf, _ := cb.First()
	al, _ := ca.Last()
	bl, _ := cb.Last()
	return bytes.Equal(af, bf) && bytes.Equal(al, bl)
}

// Keep is the number of values the store keeps at most.
func (s *Store[T, S]) Keep() int { return s.keep }

// Put inserts v, or replaces the value with its ID, and then deletes the oldest values beyond Keep,
// in the same transaction; a v older than all of a full store's values is thus dropped at once.
// An empty ID is an error.
func (s *Store[T, S]) Put(v T) error {
	id := s.id(v)
	if id == "" {
		return fmt.Errorf("history %s: put: empty ID", s.path)
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("history %s: %q: encode: %w", s.path, id, err)
	}
	sum, err := json.Marshal(s.summary(v))
	if err != nil {
		return fmt.Errorf("history %s: %q: encode summary: %w", s.path, id, err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		b, sb := tx.Bucket(bucket), tx.Bucket(summaries)
		if err := b.Put([]byte(id), data); err != nil {
			return err
		}
		if err := sb.Put([]byte(id), sum); err != nil {
			return err
		}
		return trim(b, sb, s.keep)
	})
	if err != nil {
		return fmt.Errorf("history %s: %q: put: %w", s.path, id, err)
	}
	return nil
}

// trim deletes b's oldest keys beyond the keep newest, and their summaries from sb.
func trim(b, sb *bolt.Bucket, keep int) error {
	var old [][]byte
	c := b.Cursor()
	k, _ := c.Last()
	for i := 0; i < keep && k != nil; i++ {
		k, _ = c.Prev()
	}
	for ; k != nil; k, _ = c.Prev() {
		old = append(old, bytes.Clone(k))
	}
	// Deleting after the walk: a cursor that deletes as it moves can skip keys.
	for _, k := range old {
		if err := b.Delete(k); err != nil {
			return err
		}
		if err := sb.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// Get returns the value with ID id, and whether there is one. A value that cannot be decoded is an
// error that names its ID.
func (s *Store[T, S]) Get(id string) (T, bool, error) {
	var v T
	var found bool
	err := s.db.View(func(tx *bolt.Tx) error {
		data := tx.Bucket(bucket).Get([]byte(id))
		if data == nil {
			return nil
		}
		found = true
		if err := json.Unmarshal(data, &v); err != nil {
			return fmt.Errorf("%q: decode: %w", id, err)
		}
		return nil
	})
	if err != nil {
		var zero T
		return zero, false, fmt.Errorf("history %s: %w", s.path, err)
	}
	return v, found, nil
}

// List returns at most limit values (limit < 1 means DefaultLimit), newest first; when before is
// not "", only those whose IDs sort before it, so that the last ID of one page asks for the next.
// Values that cannot be decoded are skipped.
func (s *Store[T, S]) List(limit int, before string) ([]T, error) {
	out, err := list[T](s.db, bucket, limit, before)
	if err != nil {
		return nil, fmt.Errorf("history %s: list: %w", s.path, err)
	}
	return out, nil
}

// Summaries is List of the values' summaries: it reads only them, never a value.
func (s *Store[T, S]) Summaries(limit int, before string) ([]S, error) {
	out, err := list[S](s.db, summaries, limit, before)
	if err != nil {
		return nil, fmt.Errorf("history %s: summaries: %w", s.path, err)
	}
	return out, nil
}

// list is List of bucket name, decoding each entry as an E.
func list[E any](db *bolt.DB, name []byte, limit int, before string) ([]E, error) {
	if limit < 1 {
		limit = DefaultLimit
	}
	var out []E
	err := db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(name).Cursor()
		var k, data []byte
		if before == "" {
			k, data = c.Last()
		} else if k, _ = c.Seek([]byte(before)); k == nil {
			k, data = c.Last() // every ID sorts before it
		} else {
			k, data = c.Prev()
		}
		for ; k != nil && len(out) < limit; k, data = c.Prev() {
			var e E
			if json.Unmarshal(data, &e) == nil {
				out = append(out, e)
			}
		}
		return nil
	})
	return out, err
}

// Latest returns the newest value for which match returns true (any value when match is nil), and
// whether there is one. Values that cannot be decoded are skipped.
func (s *Store[T, S]) Latest(match func(T) bool) (T, bool, error) {
	var out T
	var found bool
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucket).Cursor()
		for k, data := c.Last(); k != nil; k, data = c.Prev() {
			var v T
			if json.Unmarshal(data, &v) != nil {
				continue
			}
			if match == nil || match(v) {
				out, found = v, true
				return nil
			}
		}
		return nil
	})
	if err != nil {
		var zero T
		return zero, false, fmt.Errorf("history %s: latest: %w", s.path, err)
	}
	return out, found, nil
}

// Close closes the file and releases it for another process. Closing twice is no error; any other
// use after Close is.
func (s *Store[T, S]) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("history %s: close: %w", s.path, err)
	}
	return nil
}
