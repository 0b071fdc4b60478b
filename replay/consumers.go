package replay

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// consumersPath is Maestro's consumer collection (PROTOCOL.md §11.3).
const consumersPath = "/api/maestro/v1/consumers"

// ConsumerCount says what creating the consumers did.
type ConsumerCount struct {
	Created int64 `json:"created"`
	Present int64 `json:"present"` // 409: already there
}

// createConsumers creates every consumer through the REST API, concurrently,
// before any spec refers to it (Maestro refuses resources of unknown
// consumers). A 409 counts as present. progress, if set, gets (done, total).
func createConsumers(ctx context.Context, baseURL string, tlsCfg *tls.Config, token string, names []string,
	workers int, progress func(done, total int64)) (ConsumerCount, error) {
	if baseURL == "" {
		return ConsumerCount{}, fmt.Errorf("replay: creating consumers needs the REST URL (--rest-url)")
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig:     tlsCfg,
		MaxIdleConnsPerHost: workers,
	}}
	defer client.CloseIdleConnections()
	url := strings.TrimRight(baseURL, "/") + consumersPath
	var (
		created, present, done atomic.Int64
		firstErr               error
		errOnce                sync.Once
		wg                     sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan string)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range jobs {
				code, err := postConsumer(ctx, client, url, token, name)
				switch {
				case err != nil:
					errOnce.Do(func() { firstErr = err; cancel() })
				case code == http.StatusCreated || code == http.StatusOK:
					created.Add(1)
				case code == http.StatusConflict:
					present.Add(1)
				}
				if n := done.Add(1); progress != nil {
					progress(n, int64(len(names)))
				}
			}
		}()
	}
feed:
	for _, n := range names {
		select {
		case jobs <- n:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	c := ConsumerCount{Created: created.Load(), Present: present.Load()}
	if firstErr != nil {
		return c, firstErr
	}
	return c, ctx.Err()
}

func postConsumer(ctx context.Context, client *http.Client, url, token, name string) (int, error) {
	body, _ := json.Marshal(map[string]string{"name": name})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("replay: create consumer %s: %w", name, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("replay: create consumer %s: %w", name, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	switch resp.StatusCode {
	case http.StatusCreated, http.StatusOK, http.StatusConflict:
		return resp.StatusCode, nil
	}
	return resp.StatusCode, fmt.Errorf("replay: create consumer %s: POST %s: %s: %s",
		name, url, resp.Status, strings.TrimSpace(string(msg)))
}
