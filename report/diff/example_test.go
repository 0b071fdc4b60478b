package diff_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cereplay/cereplay/generate"
	"github.com/cereplay/cereplay/report/diff"
)

// Two traces generated with the same flags but another seed hold the same
// works; they differ only where the seed's apply delays move a status's
// times (to the second), and Diffs names the fields.
func Example() {
	dir, err := os.MkdirTemp("", "diff-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	p := generate.DefaultParams()
	p.Clusters, p.WorksPerCluster = 2, 2
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	if _, err := generate.Generate(context.Background(), a, p, nil); err != nil {
		panic(err)
	}
	p.Seed = 2
	if _, err := generate.Generate(context.Background(), b, p, nil); err != nil {
		panic(err)
	}
	res, err := diff.Diff(context.Background(), a, b, diff.Options{MaxDiffs: 1})
	if err != nil {
		panic(err)
	}
	fmt.Println(res.Same(), res.Equal, res.OnlyA, res.OnlyB, res.Changed)
	for _, g := range res.Groups {
		fmt.Println(g.Flow, g.Type, g.Changed)
	}
	fmt.Println(res.Diffs[0].Fields[0].Name)
	// Output:
	// false 10 0 0 1
	// agent>server status.update_request 1
	// ce-statushash
}
