package main

import (
	"fmt"
	"slices"
	"time"
)

// dist is a sorted set of samples (nanoseconds, or any count), read by
// nearest-rank quantiles: q(0.99) is the smallest sample at least 99% of the
// samples do not exceed.
type dist struct{ sorted []int64 }

func newDist(xs []int64) dist {
	s := slices.Clone(xs)
	slices.Sort(s)
	return dist{s}
}

func (d dist) n() int { return len(d.sorted) }

// q is the nearest-rank p-quantile, 0 for no samples.
func (d dist) q(p float64) int64 {
	if len(d.sorted) == 0 {
		return 0
	}
	rank := int(p*float64(len(d.sorted)) + 0.999999999) // ceil, tolerant of float error
	return d.sorted[min(len(d.sorted), max(1, rank))-1]
}

func (d dist) max() int64 {
	if len(d.sorted) == 0 {
		return 0
	}
	return d.sorted[len(d.sorted)-1]
}

// msOf shows a nanosecond quantile in milliseconds.
func msOf(ns int64) float64 { return float64(ns) / 1e6 }

// timedSample is one sample and when it happened (wall or clock nanos).
type timedSample struct{ at, v int64 }

// secondStat is what one whole second of samples showed.
type secondStat struct {
	Second int   `json:"second"` // from the series' start
	N      int   `json:"n"`
	P99    int64 `json:"p99_ns"`
	Max    int64 `json:"max_ns"`
}

// perSecondStats buckets samples by (at − start) into whole seconds and
// gives each bucket's count, p99 and max; seconds with no samples are
// present with N 0, so a gap shows. Samples before start are dropped.
func perSecondStats(samples []timedSample, start int64) []secondStat {
	buckets := map[int][]int64{}
	last := -1
	for _, s := range samples {
		if s.at < start {
			continue
		}
		i := int((s.at - start) / int64(time.Second))
		buckets[i] = append(buckets[i], s.v)
		last = max(last, i)
	}
	out := make([]secondStat, last+1)
	for i := range out {
		d := newDist(buckets[i])
		out[i] = secondStat{Second: i, N: d.n(), P99: d.q(0.99), Max: d.max()}
	}
	return out
}

// between is the dist of the samples with from ≤ at < to.
func between(samples []timedSample, from, to int64) dist {
	var xs []int64
	for _, s := range samples {
		if s.at >= from && s.at < to {
			xs = append(xs, s.v)
		}
	}
	return newDist(xs)
}

// showSeconds renders a per-second series as "p99/max" in ms, one entry a
// second, for a note.
func showSeconds(ss []secondStat) string {
	var b []byte
	for i, s := range ss {
		if i > 0 {
			b = append(b, ' ')
		}
		if s.N == 0 {
			b = append(b, '-')
			continue
		}
		b = fmt.Appendf(b, "%.0f/%.0f", msOf(s.P99), msOf(s.Max))
	}
	return string(b)
}
