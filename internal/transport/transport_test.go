package transport

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func TestClientTLSLoadRefuses(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "tok")
	empty := filepath.Join(dir, "empty")
	notPEM := filepath.Join(dir, "ca.pem")
	for f, b := range map[string]string{tok: "secret\n", empty: " \n", notPEM: "not a certificate"} {
		if err := os.WriteFile(f, []byte(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		t    ClientTLS
		want string
	}{
		{"token without TLS", ClientTLS{TokenFile: tok}, "clear text"},
		{"empty token", ClientTLS{TokenFile: empty}, "is empty"},
		{"missing token", ClientTLS{TokenFile: filepath.Join(dir, "none")}, "token file"},
		{"CA without PEM", ClientTLS{CAFile: notPEM}, "no PEM certificate"},
		{"cert without key", ClientTLS{CAFile: "", CertFile: notPEM}, "go together"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := tc.t.Load()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load: %v, want an error with %q", err, tc.want)
			}
		})
	}
	if cfg, token, err := (ClientTLS{}).Load(); cfg != nil || token != "" || err != nil {
		t.Fatalf("no options: %v %q %v", cfg, token, err)
	}
}

func TestBearerCheck(t *testing.T) {
	b := Bearer{Token: "s3cret", Name: "sim"}
	ctx := func(kv ...string) context.Context {
		return metadata.NewIncomingContext(context.Background(), metadata.Pairs(kv...))
	}
	if err := b.Check(ctx("authorization", "Bearer s3cret")); err != nil {
		t.Fatalf("right token refused: %v", err)
	}
	for _, c := range []context.Context{context.Background(), ctx("authorization", "Bearer wrong")} {
		err := b.Check(c)
		if status.Code(err) != codes.Unauthenticated || !strings.HasPrefix(status.Convert(err).Message(), "sim: ") {
			t.Fatalf("wrong or missing token: %v", err)
		}
	}
	if err := (Bearer{}).Check(context.Background()); err != nil {
		t.Fatalf("no token configured: %v", err)
	}
}

func TestRawCodecRoundTrip(t *testing.T) {
	var c RawCodec
	data, err := c.Marshal(&RawMsg{Head: []byte{0x0a, 3}, B: []byte("abc")})
	if err != nil {
		t.Fatal(err)
	}
	var m RawMsg
	if err := c.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	if string(m.B) != "\x0a\x03abc" {
		t.Fatalf("round trip: %q", m.B)
	}
	if _, err := c.Marshal("not raw"); err == nil {
		t.Fatal("marshal of a string: no error")
	}
	if err := c.Unmarshal(mem.BufferSlice{}, new(int)); err == nil {
		t.Fatal("unmarshal into an int: no error")
	}
}
