package config

import "strings"

// Closest returns the candidate nearest to s, if it is near enough to be
// the one meant: a typo (an edit distance of about one in five characters,
// a swap of two letters counting one), or an abbreviation or extension of
// the last words (redis.database for redis.db, kafka.group for
// kafka.group_id). The subscriptions file's keys use it too.
func Closest(s string, candidates []string) (string, bool) {
	best, bestScore, bestDist := "", 0, 0
	for _, c := range candidates {
		d := editDistance(s, c)
		score := d
		if abbreviates(s, c) {
			score = min(score, 1)
		}
		if best == "" || score < bestScore || (score == bestScore && d < bestDist) {
			best, bestScore, bestDist = c, score, d
		}
	}
	limit := max(1, min(3, len(s)/5))
	if best == "" || bestScore > limit {
		return "", false
	}
	return best, true
}

// abbreviates reports whether, after the words a and b share, one's rest is
// a shortening of the other's: same first letter, and its letters appear in
// order in the other (db in database, group in group_id).
func abbreviates(a, b string) bool {
	i := 0 // the end of the shared words
	for j := 0; j < len(a) && j < len(b) && a[j] == b[j]; j++ {
		if a[j] == '.' || a[j] == '_' {
			i = j + 1
		}
	}
	ra, rb := a[i:], b[i:]
	if ra == "" || rb == "" || ra[0] != rb[0] || ra == rb || strings.Contains(ra+rb, ".") {
		return false // within one key's last part only: redis.host is no shortening of redis
	}
	if len(ra) > len(rb) {
		ra, rb = rb, ra
	}
	return subsequence(ra, rb)
}

func subsequence(short, long string) bool {
	i := 0
	for j := 0; i < len(short) && j < len(long); j++ {
		if short[i] == long[j] {
			i++
		}
	}
	return i == len(short)
}

// editDistance is the optimal string alignment distance: insertions,
// deletions, substitutions and swaps of adjacent characters cost one.
func editDistance(a, b string) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
