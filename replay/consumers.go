package replay

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cereplay/cereplay/maestro"
)

// ConsumerCount says what creating the consumers did.
type ConsumerCount struct {
	Created int64 `json:"created"`
	Present int64 `json:"present"` // 409: already there
}

// createConsumers creates every consumer through Maestro's REST API
// (maestro.RESTClient), concurrently, before any spec refers to it: Maestro
// refuses resources of unknown consumers. A 409 counts as present.
// progress, if set, gets (done, total).
func createConsumers(ctx context.Context, baseURL string, tlsCfg *tls.Config, token string, names []string,
	workers int, progress func(done, total int64)) (ConsumerCount, error) {
	if baseURL == "" {
		return ConsumerCount{}, fmt.Errorf("replay: creating consumers needs the REST URL (--rest-url)")
	}
	transport := &http.Transport{TLSClientConfig: tlsCfg, MaxIdleConnsPerHost: workers}
	defer transport.CloseIdleConnections()
	client, err := maestro.NewRESTClient(baseURL, &http.Client{Timeout: 30 * time.Second, Transport: transport}, token)
	if err != nil {
		return ConsumerCount{}, fmt.Errorf("replay: %w", err)
	}
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
				isNew, err := client.CreateConsumer(ctx, name)
				switch {
				case err != nil:
					errOnce.Do(func() { firstErr = fmt.Errorf("replay: %w", err); cancel() })
				case isNew:
					created.Add(1)
				default:
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
