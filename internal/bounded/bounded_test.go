package bounded

import (
	"errors"
	"strings"
	"testing"
	"testing/iotest"
)

func TestRead(t *testing.T) {
	if b, err := Read(strings.NewReader("abcd"), 4, "body"); err != nil || string(b) != "abcd" {
		t.Errorf("at the limit: %q, %v", b, err)
	}
	tests := []struct {
		limit int64
		what  string
		want  string
	}{
		{3, "", "larger than 3 bytes"},
		{3, "body", "body larger than 3 bytes"},
		{2 << 20, "body", "body larger than 2 MiB"},
	}
	for _, tt := range tests {
		_, err := Read(strings.NewReader(strings.Repeat("x", int(tt.limit)+1)), tt.limit, tt.what)
		var tl *TooLargeError
		if !errors.As(err, &tl) || err.Error() != tt.want {
			t.Errorf("Read(%d, %q): %v, want %q", tt.limit, tt.what, err, tt.want)
		}
	}
	boom := errors.New("boom")
	if _, err := Read(iotest.ErrReader(boom), 4, "body"); !errors.Is(err, boom) || err.Error() != "reading body: boom" {
		t.Errorf("read error: %v", err)
	}
	if _, err := Read(iotest.ErrReader(boom), 4, ""); err != boom {
		t.Errorf("read error, unnamed: %v", err)
	}
}
