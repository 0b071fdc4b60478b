package generate

import "testing"

// FuzzParseDelay: any flag value either fails with an error or gives a
// valid distribution whose String parses back to it, and sampling it
// never panics.
func FuzzParseDelay(f *testing.F) {
	for _, s := range []string{"1s", "fixed:0s", "lognormal:median=1s,sigma=0.5,max=30s", "uniform:min=1ms,max=2s", "lognormal:", "uniform:min=,max=1s", "x:y=z", "uniform:min=0s,max=2562047h47m16.854775807s", "lognormal:median=2562047h,sigma=10,max=2562047h47m16s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDelay(s)
		if err != nil {
			return
		}
		if err := d.Validate(); err != nil {
			t.Fatalf("ParseDelay(%q) = %+v, which does not validate: %v", s, d, err)
		}
		again, err := ParseDelay(d.String())
		if err != nil || again != d {
			t.Fatalf("%q: String %q parses to %+v, %v", s, d.String(), again, err)
		}
		r := workRand(1, 2)
		for i := 0; i < 10; i++ {
			if v := d.Sample(r); v < minDelay {
				t.Fatalf("%q sampled %v", s, v)
			}
		}
	})
}
