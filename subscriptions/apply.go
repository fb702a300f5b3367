package subscriptions

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Action is what an apply does to one subscription.
type Action string

// The actions of an apply.
const (
	Added   Action = "added"
	Updated Action = "updated"
	Deleted Action = "deleted"
)

// Change is one subscription an apply adds, updates or deletes.
type Change struct {
	Action Action
	ID     string
	// Fields are, for an update, the fields whose values change, named as
	// in the apply file.
	Fields []string
	// Removed are, for an update, the secrets it takes away ("api_key",
	// "signing_secret", "previous_signing_secret"): the partner would then
	// receive deliveries without the key it checks or the signature it
	// verifies. (A deleted subscription loses its secrets with it.)
	Removed []string
	// Unreadable is set when the update replaces a stored entry that did not
	// decode (see CorruptError).
	Unreadable bool
}

// ApplyResult is what an apply changed or, in a dry run, would change.
type ApplyResult struct {
	// Changes are in the desired list's order, deletions last by id.
	Changes   []Change
	Unchanged int
	// DryRun is set when nothing was written.
	DryRun bool
	// Refused is set on a dry run whose apply would be refused and write
	// nothing: the error the apply would fail with. Changes are then what
	// the apply would do if allowed to delete.
	Refused *DeleteRefusedError
}

// Count is how many changes have action a.
func (r ApplyResult) Count(a Action) int {
	n := 0
	for _, c := range r.Changes {
		if c.Action == a {
			n++
		}
	}
	return n
}

// Deleted are the ids the apply deletes.
func (r ApplyResult) Deleted() []string {
	var ids []string
	for _, c := range r.Changes {
		if c.Action == Deleted {
			ids = append(ids, c.ID)
		}
	}
	return ids
}

// secretNames are the removed secrets as the summary words them.
var secretNames = map[string]string{
	"api_key":                 "API key",
	"signing_secret":          "signing secret",
	"previous_signing_secret": "previous signing secret",
}

// removedNames words c.Removed: "API key and signing secret".
func (c Change) removedNames() string {
	names := make([]string, len(c.Removed))
	for i, f := range c.Removed {
		names[i] = secretNames[f]
	}
	return strings.Join(names, " and ")
}

// Removals words the secrets the apply takes away, one per subscription:
// "removed signing secret of sub_x" ("would remove" in a dry run).
func (r ApplyResult) Removals() []string {
	verb := "removed"
	if r.DryRun {
		verb = "would remove"
	}
	var out []string
	for _, c := range r.Changes {
		if len(c.Removed) == 0 {
			continue
		}
		out = append(out, fmt.Sprintf("%s %s of %s", verb, c.removedNames(), c.ID))
	}
	return out
}

// Counts are the counts, then every secret removed: "added 1, updated 0,
// deleted 0, unchanged 2; removed API key of sub_x".
func (r ApplyResult) Counts() string {
	var b strings.Builder
	fmt.Fprintf(&b, "added %d, updated %d, deleted %d, unchanged %d", r.Count(Added), r.Count(Updated), r.Count(Deleted), r.Unchanged)
	for _, rm := range r.Removals() {
		b.WriteString("; " + rm)
	}
	return b.String()
}

// String is the one-line summary: Counts, after what a dry run would do.
func (r ApplyResult) String() string {
	switch {
	case r.Refused != nil:
		return fmt.Sprintf("dry run, nothing written: the apply would be refused and write nothing, as it would delete %s (%s) "+
			"without being allowed to; allowed to, it would have %s", Many(len(r.Refused.IDs)), strings.Join(r.Refused.IDs, ", "), r.Counts())
	case r.DryRun:
		return "dry run, nothing written: would have " + r.Counts()
	}
	return r.Counts()
}

// Many words a number of subscriptions: "1 subscription", "2 subscriptions".
func Many(n int) string {
	if n == 1 {
		return "1 subscription"
	}
	return fmt.Sprintf("%d subscriptions", n)
}

// planVerbs word the actions of a dry run.
var planVerbs = map[Action]string{Added: "add", Updated: "update", Deleted: "delete"}

// Lines describe the changes, one a line, for a plan or a progress report,
// never quoting a secret: "updated sub_x: url, signing_secret (removes its
// signing secret)", or "update sub_x: …" in a dry run.
func (r ApplyResult) Lines() []string {
	lines := make([]string, len(r.Changes))
	for i, c := range r.Changes {
		verb := string(c.Action)
		if r.DryRun {
			verb = planVerbs[c.Action]
		}
		line := verb + " " + c.ID
		if len(c.Fields) > 0 {
			line += ": " + strings.Join(c.Fields, ", ")
		}
		if len(c.Removed) > 0 {
			line += " (removes its " + c.removedNames() + ")"
		}
		if c.Unreadable {
			line += " (replaces an unreadable entry)"
		}
		lines[i] = line
	}
	return lines
}

// DeleteRefusedError is an apply that would delete subscriptions absent
// from the desired list without being allowed to: nothing was written.
type DeleteRefusedError struct {
	// IDs are the subscriptions it would delete, sorted.
	IDs []string
	// Unconfirmed is set when the deletions were allowed only for a
	// confirmed list (ApplyOptions.PruneOnly) and the table has since
	// gained others.
	Unconfirmed bool
}

func (e *DeleteRefusedError) Error() string {
	if e.Unconfirmed {
		return fmt.Sprintf("the table changed since the plan was confirmed: the apply would also delete %s; nothing written", strings.Join(e.IDs, ", "))
	}
	return fmt.Sprintf("the apply would delete %s absent from the desired list (%s); nothing written", Many(len(e.IDs)), strings.Join(e.IDs, ", "))
}

// ApplyOptions are how an apply may change the table.
type ApplyOptions struct {
	// Prune allows deleting the subscriptions absent from the desired list.
	// Without it an apply that would delete any writes nothing and fails
	// with a *DeleteRefusedError naming them.
	Prune bool
	// PruneOnly, when not nil, limits Prune to these ids: the deletions a
	// user confirmed from a plan. If the table has gained other entries
	// absent from the list since, the apply writes nothing and fails with a
	// *DeleteRefusedError.
	PruneOnly []string
	// DryRun computes the result and writes nothing. A dry run whose apply
	// would be refused returns no error: its result's Refused says why, and
	// its Changes are the plan as if deleting were allowed.
	DryRun bool
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

// Apply makes the table equal to desired in one transaction, deleting
// nothing: Apply(ctx, desired) is ApplyWith(ctx, desired, ApplyOptions{}).
func (s *Store) Apply(ctx context.Context, desired []Subscription) (ApplyResult, error) {
	return s.ApplyWith(ctx, desired, ApplyOptions{})
}

// ApplyWith makes the table equal to desired in one transaction: entries
// missing from Redis are added, differing ones updated (keeping CreatedAt),
// identical ones not touched, and the rest of Redis deleted when opts allow
// it. An entry without an id gets one derived from its tenant and URL, so
// applying the same list twice changes nothing. Every entry is validated
// first; on any error (an *EntryError names the entry, a
// *DeleteRefusedError the deletions not allowed) nothing is written.
func (s *Store) ApplyWith(ctx context.Context, desired []Subscription, opts ApplyOptions) (ApplyResult, error) {
	want, err := s.prepareApply(desired)
	if err != nil {
		return ApplyResult{}, err
	}
	var res ApplyResult
	err = s.commit(ctx, func(tx *redis.Tx) (mutation, error) {
		res = ApplyResult{DryRun: opts.DryRun}
		current, err := tx.HGetAll(ctx, s.hashKey).Result()
		if err != nil {
			return mutation{}, err
		}
		var m mutation
		now := s.now()
		for _, w := range want {
			raw, ok := current[w.ID]
			if !ok {
				w.CreatedAt, w.UpdatedAt = now, now
				m.set = append(m.set, w)
				res.Changes = append(res.Changes, Change{Action: Added, ID: w.ID})
				continue
			}
			delete(current, w.ID)
			old, err := s.decode(w.ID, raw)
			c := Change{Action: Updated, ID: w.ID}
			w.CreatedAt, w.UpdatedAt = now, now
			switch {
			case err == nil && sameContent(old, w):
				res.Unchanged++
				continue
			case err == nil:
				w.CreatedAt = old.CreatedAt
				c.Fields, c.Removed = changedFields(old, w), removedSecrets(old, w, now)
			default:
				c.Unreadable = true
			}
			m.set = append(m.set, w)
			res.Changes = append(res.Changes, c)
		}
		for id := range current {
			m.del = append(m.del, id)
		}
		slices.Sort(m.del)
		for _, id := range m.del {
			res.Changes = append(res.Changes, Change{Action: Deleted, ID: id})
		}
		var refused *DeleteRefusedError
		switch {
		case len(m.del) > 0 && !opts.Prune:
			refused = &DeleteRefusedError{IDs: m.del}
		case opts.Prune && opts.PruneOnly != nil:
			if extra := slices.DeleteFunc(slices.Clone(m.del), func(id string) bool { return slices.Contains(opts.PruneOnly, id) }); len(extra) > 0 {
				refused = &DeleteRefusedError{IDs: extra, Unconfirmed: true}
			}
		}
		if opts.DryRun {
			res.Refused = refused
			return mutation{}, nil
		}
		if refused != nil {
			return mutation{}, refused
		}
		return m, nil
	})
	if err != nil {
		return ApplyResult{}, fmt.Errorf("apply subscriptions: %w", err)
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
