package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
)

// fetchProfiles saves a 10 s CPU profile of webhookd and, 5 s into it, a
// heap profile, into the results directory, and queues `go tool pprof -top`
// of each for printing. It is called once deliveries have started.
func (b *bench) fetchProfiles(ctx context.Context, res *scenarioResult, w *webhookd) {
	base := "http://" + w.OpsAddr + "/debug/pprof/"
	type profile struct{ name, path, file, top string }
	ps := []*profile{{name: "cpu", path: "profile?seconds=10"}, {name: "heap", path: "heap"}}
	errs := make([]error, len(ps))
	var wg sync.WaitGroup
	for i, p := range ps {
		p.file = filepath.Join(b.resultsDir, res.Name+"-"+p.name+".pprof")
		wg.Go(func() {
			if p.name == "heap" { // mid-drain, not after it
				select {
				case <-ctx.Done():
				case <-time.After(5 * time.Second):
				}
			}
			if errs[i] = download(ctx, base+p.path, p.file); errs[i] != nil {
				return
			}
			top, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=25", b.bin, p.file).CombinedOutput()
			if err != nil {
				errs[i] = fmt.Errorf("go tool pprof %s: %w", p.file, err)
			}
			p.top = string(top)
		})
	}
	wg.Wait()
	for i, p := range ps {
		if errs[i] != nil {
			res.note("%s profile: %v (does this webhookd support ops.pprof?)", p.name, errs[i])
			continue
		}
		res.note("%s profile saved to %s", p.name, p.file)
		b.profileTops = append(b.profileTops, fmt.Sprintf("### webhookd %s profile, %s scenario (%s)\n\n```\n%s```\n", p.name, res.Name, p.file, p.top))
	}
}

func download(ctx context.Context, url, file string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
