package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// userAgent is userAgent, the guide's; not imported so the bench
// builds while delivery is being changed.
const userAgent = "Unibo-Webhooks/1.0"

// rawSubcommand is the hidden first argument that makes this program the
// raw client instead of the bench.
const rawSubcommand = "rawclient"

// runRawProcess runs the raw client in a process of its own, as webhookd
// runs in one: in the bench process it would share the Go scheduler and
// garbage collector with the receivers (and the embedded Kafka), and the
// comparison with webhookd would not be like for like.
func runRawProcess(ctx context.Context, urls []string, n int64, workers int) (rawResult, error) {
	self, err := os.Executable()
	if err != nil {
		return rawResult{}, err
	}
	cmd := exec.CommandContext(ctx, self, rawSubcommand, "-urls", strings.Join(urls, ","),
		"-n", strconv.FormatInt(n, 10), "-workers", strconv.Itoa(workers))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return rawResult{}, fmt.Errorf("raw client process: %w", err)
	}
	var res rawResult
	if err := json.Unmarshal(out, &res); err != nil {
		return rawResult{}, fmt.Errorf("raw client process output %q: %w", out, err)
	}
	return res, nil
}

// rawClientMain is the raw client process: it prints its rawResult as JSON.
func rawClientMain(args []string) error {
	fs := flag.NewFlagSet(rawSubcommand, flag.ContinueOnError)
	urls := fs.String("urls", "", "comma-separated receiver URLs")
	n := fs.Int64("n", 0, "requests")
	workers := fs.Int("workers", 64, "goroutines")
	if err := fs.Parse(args); err != nil {
		return err
	}
	payloads, err := renderedPayloads(10_000)
	if err != nil {
		return err
	}
	res, err := runRaw(context.Background(), strings.Split(*urls, ","), payloads, *n, *workers)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// rawResult is one run of the raw HTTP client.
type rawResult struct {
	Workers  int
	Requests int64
	OK       int64
	Duration time.Duration
}

func (r rawResult) rate() float64 { return float64(r.OK) / r.Duration.Seconds() }

// runRaw POSTs n requests, the payloads cycled and the URLs alternated, with
// workers goroutines over one shared keep-alive transport allowing a
// connection per worker and host: the most the bench's receivers can take
// from a Go client, with no Kafka in the way.
func runRaw(ctx context.Context, urls []string, payloads [][]byte, n int64, workers int) (rawResult, error) {
	transport := &http.Transport{
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: workers,
		MaxConnsPerHost:     workers,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: 30 * time.Second}
	var next, ok atomic.Int64
	var firstErr atomic.Pointer[error]
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= n {
					return
				}
				if err := post(ctx, client, urls[i%int64(len(urls))], payloads[i%int64(len(payloads))]); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					continue
				}
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	res := rawResult{Workers: workers, Requests: n, OK: ok.Load(), Duration: time.Since(start)}
	if e := firstErr.Load(); e != nil {
		return res, fmt.Errorf("raw client: %d of %d requests failed, first: %w", n-res.OK, n, *e)
	}
	return res, ctx.Err()
}

// post sends the request webhookd sends: same body and headers.
func post(ctx context.Context, client *http.Client, url string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}
