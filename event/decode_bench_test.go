package event

import "testing"

func BenchmarkDecode(b *testing.B) {
	raw := []byte(Examples[1].Domain) // free spins: the most fields
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := Decode(raw); err != nil {
			b.Fatal(err)
		}
	}
}
