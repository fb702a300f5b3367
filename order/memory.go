package order

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"
)

// Memory is an in-process chain store that behaves as Chains does, for
// tests and single-process setups. It is safe for concurrent use.
type Memory struct {
	mu     sync.Mutex
	chains map[Partition]map[string]Chain
	dues   map[Partition]map[string]time.Time
	recent map[Partition]map[string]string // a chain's recent joins, as Chains keeps them
}

// NewMemory returns an empty store.
func NewMemory() *Memory {
	return &Memory{chains: map[Partition]map[string]Chain{}, dues: map[Partition]map[string]time.Time{},
		recent: map[Partition]map[string]string{}}
}

// Join is Chains.Join.
func (m *Memory) Join(ctx context.Context, p Partition, field string, offsets []int64) ([]int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("join chain %v %q: %w", p, field, err)
	}
	if err := checkOffsets(offsets); err != nil {
		return nil, fmt.Errorf("join chain %v %q: %w", p, field, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.chains[p][field]
	recent := m.recent[p][field]
	next, write, prevs, err := join(c, ok, recent, offsets)
	if err != nil {
		return nil, fmt.Errorf("join chain %v %q: %w", p, field, err)
	}
	if write {
		if m.chains[p] == nil {
			m.chains[p] = map[string]Chain{}
			m.recent[p] = map[string]string{}
		}
		if !ok {
			recent = ""
		}
		m.chains[p][field] = next
		m.recent[p][field] = appendRecent(recent, recentEntry(next.Start, next.Last, next.StartPrev))
	}
	return prevs, nil
}

// Settle is Chains.Settle.
func (m *Memory) Settle(ctx context.Context, p Partition, field string, o int64) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("settle chain %v %q: %w", p, field, err)
	}
	if err := checkOffset(o); err != nil {
		return fmt.Errorf("settle chain %v %q: %w", p, field, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.chains[p][field]
	if !ok {
		return nil
	}
	if next, closed := settle(c, o); closed {
		delete(m.chains[p], field)
		delete(m.dues[p], field)
		delete(m.recent[p], field)
	} else {
		m.chains[p][field] = next
	}
	return nil
}

// Get is Chains.Get.
func (m *Memory) Get(ctx context.Context, p Partition, field string) (Chain, bool, error) {
	if err := ctx.Err(); err != nil {
		return Chain{}, false, fmt.Errorf("get chain %v %q: %w", p, field, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.chains[p][field]
	if ok {
		c.HeadDue = m.dues[p][field]
	}
	return c, ok, nil
}

// Booked is Chains.Booked.
func (m *Memory) Booked(ctx context.Context, p Partition, field string, due time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("book chain head %v %q: %w", p, field, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.chains[p][field]; !ok {
		return nil
	}
	if m.dues[p] == nil {
		m.dues[p] = map[string]time.Time{}
	}
	m.dues[p][field] = time.UnixMilli(due.UnixMilli()) // as Redis keeps it
	return nil
}

// Scan is Chains.Scan.
func (m *Memory) Scan(ctx context.Context, p Partition) (map[string]Chain, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("scan chains %v: %w", p, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	chains := maps.Clone(m.chains[p])
	if chains == nil {
		chains = map[string]Chain{}
	}
	return chains, nil
}
