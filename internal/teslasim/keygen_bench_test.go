package teslasim

import "testing"

func BenchmarkNewWithKeygen(b *testing.B) {
	for b.Loop() {
		if _, err := New(Config{}); err != nil {
			b.Fatal(err)
		}
	}
}
