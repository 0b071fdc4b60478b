package replay

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/cereplay/cereplay/report/scrape"
)

// DefaultInterval is how often the run's timeline is cut and the targets'
// metrics are scraped.
const DefaultInterval = time.Second

// startScrape starts scraping the targets' metrics into the run folder
// for the whole run; the returned function stops it and reports a write
// error. A target that does not answer is a gap in the samples, not a
// failure of the run. Stop may be called more than once.
func startScrape(dir string, cfg Config) (stop func() error, err error) {
	if len(cfg.TargetMetrics) == 0 {
		return func() error { return nil }, nil
	}
	f, err := os.Create(filepath.Join(dir, scrape.File))
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	s := scrape.Start(scrape.Config{Targets: cfg.TargetMetrics, Interval: cfg.Interval}, f)
	return sync.OnceValue(func() error {
		err := s.Stop()
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("replay: %s: %w", scrape.File, cerr)
		}
		return err
	}), nil
}
