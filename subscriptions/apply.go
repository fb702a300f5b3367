package subscriptions

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"
)

// ApplyResult counts what Apply changed.
type ApplyResult struct {
	Added     int
	Updated   int
	Deleted   int
	Unchanged int
}

func (r ApplyResult) String() string {
	return fmt.Sprintf("added %d, updated %d, deleted %d, unchanged %d", r.Added, r.Updated, r.Deleted, r.Unchanged)
}

// EntryError locates an invalid entry of a desired table or apply file. Err
// is usually a *FieldError.
type EntryError struct {
	Index int    // position in the list, from 0
	ID    string // the entry's id, when it has one
	Line  int    // line in the file, when known
	Err   error
}

func (e *EntryError) Error() string {
	var where []string
	if e.ID != "" {
		where = append(where, fmt.Sprintf("id %q", e.ID))
	}
	if e.Line > 0 {
		where = append(where, fmt.Sprintf("line %d", e.Line))
	}
	loc := fmt.Sprintf("subscriptions[%d]", e.Index)
	if len(where) > 0 {
		loc += " (" + strings.Join(where, ", ") + ")"
	}
	return loc + ": " + e.Err.Error()
}

func (e *EntryError) Unwrap() error { return e.Err }

// Apply makes the table equal to desired in one transaction: entries missing
// from Redis are added, differing ones updated (keeping CreatedAt), the rest
// of Redis deleted; identical entries are not touched. An entry without an id
// gets one derived from its tenant and URL, so applying the same list twice
// changes nothing. Every entry is validated first; on any error (the
// *EntryError names the entry) nothing is written.
func (s *Store) Apply(ctx context.Context, desired []Subscription) (ApplyResult, error) {
	return s.ApplyReporting(ctx, desired, nil)
}

// ApplyReporting is Apply that, once the transaction is committed, calls
// changed (when not nil) for each subscription added, updated or deleted,
// with action "added", "updated" or "deleted".
func (s *Store) ApplyReporting(ctx context.Context, desired []Subscription, changed func(action, id string)) (ApplyResult, error) {
	want, err := s.prepareApply(desired)
	if err != nil {
		return ApplyResult{}, err
	}
	var res ApplyResult
	var updated map[string]bool
	var m mutation
	err = s.commit(ctx, func(tx *redis.Tx) (mutation, error) {
		res, updated, m = ApplyResult{}, map[string]bool{}, mutation{}
		current, err := tx.HGetAll(ctx, s.hashKey).Result()
		if err != nil {
			return mutation{}, err
		}
		now := s.now()
		for _, w := range want {
			raw, ok := current[w.ID]
			if !ok {
				w.CreatedAt, w.UpdatedAt = now, now
				m.set = append(m.set, w)
				res.Added++
				continue
			}
			delete(current, w.ID)
			old, err := s.decode(w.ID, raw)
			if err == nil && sameContent(old, w) {
				res.Unchanged++
				continue
			}
			w.CreatedAt, w.UpdatedAt = now, now
			if err == nil {
				w.CreatedAt = old.CreatedAt
			}
			m.set = append(m.set, w)
			updated[w.ID] = true
			res.Updated++
		}
		for id := range current {
			m.del = append(m.del, id)
		}
		slices.Sort(m.del)
		res.Deleted = len(m.del)
		return m, nil
	})
	if err != nil {
		return ApplyResult{}, fmt.Errorf("apply subscriptions: %w", err)
	}
	if changed != nil {
		for _, sub := range m.set {
			if updated[sub.ID] {
				changed("updated", sub.ID)
			} else {
				changed("added", sub.ID)
			}
		}
		for _, id := range m.del {
			changed("deleted", id)
		}
	}
	return res, nil
}

// prepareApply validates every entry, fills in missing ids and rejects
// duplicate ids. It returns copies; Apply sets their timestamps.
func (s *Store) prepareApply(desired []Subscription) ([]Subscription, error) {
	want := make([]Subscription, len(desired))
	index := make(map[string]int, len(desired))
	perTenant := map[string]int{}
	for i, d := range desired {
		if err := s.validate(d); err != nil {
			return nil, &EntryError{Index: i, ID: d.ID, Err: err}
		}
		if perTenant[d.TenantID]++; s.maxPerTenant > 0 && perTenant[d.TenantID] > s.maxPerTenant {
			return nil, &EntryError{Index: i, ID: d.ID, Err: fmt.Errorf("%w (%d): the file gives tenant %q more", ErrTenantLimit, s.maxPerTenant, d.TenantID)}
		}
		w := d.clone()
		derived := w.ID == ""
		if derived {
			w.ID = derivedID(w.TenantID, w.URL)
		}
		if j, dup := index[w.ID]; dup {
			reason := fmt.Sprintf("id %q is also used by subscriptions[%d]", w.ID, j)
			if derived {
				reason += " (entries without an id get one from tenant_id and url: give these explicit ids)"
			}
			return nil, &EntryError{Index: i, ID: d.ID, Err: &FieldError{Field: "id", Reason: reason}}
		}
		index[w.ID] = i
		want[i] = w
	}
	return want, nil
}
