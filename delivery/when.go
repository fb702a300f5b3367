package delivery

import (
	"fmt"
	"time"
)

// ParseWhen reads the bound of a dead-letter filter: an RFC 3339 time, or
// a duration before now such as 2h. Empty is the zero time (no bound).
func ParseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a duration such as 2h", s)
}
