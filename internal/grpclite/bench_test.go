package grpclite

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/cereplay/cereplay/internal/transport"
)

// BenchmarkPublish compares a unary call of a spec's size (4,666 bytes,
// two parts as replay sends them) made with grpclite (Invoke, and Go
// waited for) and with gRPC-go's client and the raw codec, against the
// same gRPC-go server on loopback, 50 calls in flight. The server's CPU
// is in ns/op too; allocs/op are the client's and the server's.
func BenchmarkPublish(b *testing.B) {
	ts := startServer(b)
	msg := [][]byte{make([]byte, 3), make([]byte, 4663)}
	ctx := context.Background()
	b.Run("grpclite-Invoke", func(b *testing.B) {
		c := NewClient(ts.addr, Options{})
		defer c.Close()
		b.ReportAllocs()
		b.SetParallelism(25) // 50 in flight on 2 processors
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := c.Invoke(ctx, mPublish, msg...); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("grpclite-Go", func(b *testing.B) {
		c := NewClient(ts.addr, Options{})
		defer c.Close()
		b.ReportAllocs()
		b.SetParallelism(25)
		b.RunParallel(func(pb *testing.PB) {
			done := make(chan error, 1)
			for pb.Next() {
				c.Go(mPublish, msg, time.Minute, func(err error) { done <- err })
				if err := <-done; err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("grpc-go", func(b *testing.B) {
		cc, err := grpc.NewClient(ts.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		defer cc.Close()
		b.ReportAllocs()
		b.SetParallelism(25)
		b.RunParallel(func(pb *testing.PB) {
			req := &transport.RawMsg{Head: msg[0], B: msg[1]}
			for pb.Next() {
				var resp transport.RawMsg
				if err := cc.Invoke(ctx, mPublish, req, &resp, transport.RawCall); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
