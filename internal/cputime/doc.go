// Package cputime reads the CPU time of this process, for benchmarks that
// report work per CPU-second beside work per wall-second: the first does
// not move when other processes share the machine.
package cputime
