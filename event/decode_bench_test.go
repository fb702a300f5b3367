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

func BenchmarkWebhookID(b *testing.B) {
	ev, err := Decode([]byte(Examples[3].Domain)) // an opt-in: the longest identity
	if err != nil {
		b.Fatal(err)
	}
	ev.Source = Source{Topic: "campaign-participation", Partition: 7, Offset: 1234567}
	b.ReportAllocs()
	for b.Loop() {
		if id := ev.WebhookID("sub-1"); len(id) != 30 {
			b.Fatal(id)
		}
	}
}
