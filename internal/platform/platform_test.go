package platform

import "testing"

func TestParse(t *testing.T) {
	tests := []struct {
		in, want, slug string
		bad            bool
	}{
		{in: "linux/amd64", want: "linux/amd64", slug: "linux-amd64"},
		{in: "linux/arm64", want: "linux/arm64", slug: "linux-arm64"},
		{in: "linux/arm64/v8", want: "linux/arm64", slug: "linux-arm64"},
		{in: "linux/arm/v7", want: "linux/arm/v7", slug: "linux-arm-v7"},
		{in: "linux", bad: true},
		{in: "linux/amd46", bad: true},
		{in: "plan9/amd64", bad: true},
		{in: "linux/amd64/v2/x", bad: true},
		{in: "linux/AMD64", bad: true},
		{in: "linux/../amd64", bad: true},
		{in: "", bad: true},
	}
	for _, tt := range tests {
		p, err := Parse(tt.in)
		if tt.bad {
			if err == nil {
				t.Errorf("Parse(%q) = %v, want an error", tt.in, p)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if p.String() != tt.want || p.Slug() != tt.slug {
			t.Errorf("Parse(%q) = %q/%q, want %q/%q", tt.in, p.String(), p.Slug(), tt.want, tt.slug)
		}
	}
}
