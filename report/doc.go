// Package report reads run folders (see RUN.md) and turns them into what a
// person or a CI job looks at: one self-contained HTML page of charts over
// time for one or several runs (Build, WriteHTML), the same data as JSON,
// and a comparison of two runs against thresholds (Compare).
//
// It reads only the files a replay writes; it never needs the target.
package report
