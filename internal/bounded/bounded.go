// Package bounded reads what another party sends (an HTTP body, a registry's blob, a cache
// file) without trusting its size: at most a limit, and more is an error, never a truncation.
package bounded

import (
	"fmt"
	"io"
)

// Read reads r to its end, at most limit bytes. what names r in errors ("body": "reading
// body: …", "body larger than 32 MiB"); "" names nothing ("larger than 1000 bytes"). A limit
// of whole MiB is said in MiB.
func Read(r io.Reader, limit int64, what string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		if what != "" {
			return nil, fmt.Errorf("reading %s: %w", what, err)
		}
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, &TooLargeError{What: what, Limit: limit}
	}
	return b, nil
}

// TooLargeError is a read that went past its limit.
type TooLargeError struct {
	What  string
	Limit int64
}

func (e *TooLargeError) Error() string {
	size := fmt.Sprintf("%d bytes", e.Limit)
	if e.Limit > 0 && e.Limit%(1<<20) == 0 {
		size = fmt.Sprintf("%d MiB", e.Limit>>20)
	}
	if e.What == "" {
		return "larger than " + size
	}
	return e.What + " larger than " + size
}
