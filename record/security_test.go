package record_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/cereplay/cereplay/internal/sdkclient"
	"github.com/cereplay/cereplay/internal/testpki"
	"github.com/cereplay/cereplay/internal/transport"
	"github.com/cereplay/cereplay/maestro"
	"github.com/cereplay/cereplay/record"
	"github.com/cereplay/cereplay/sim"
)

// bearer sends a token with every call.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}
func (bearer) RequireTransportSecurity() bool { return true }

// TestSecurityBothSides: a sim that wants mTLS and a token on both ports,
// a recorder that wants its own client certificates and token from its
// clients and presents its own to sim. A client with both passes through;
// one without the token gets Unauthenticated from the recorder, one
// without a certificate is refused.
func TestSecurityBothSides(t *testing.T) {
	const cluster = "secure-cluster"
	ca := testpki.NewCA(t, "ca")
	server := ca.Issue(t, "server", x509.ExtKeyUsageServerAuth)
	proxyClient := ca.Issue(t, "proxy-client", x509.ExtKeyUsageClientAuth)
	client := ca.Issue(t, "client", x509.ExtKeyUsageClientAuth)
	files := transport.ServerTLS{CertFile: server.CertFile, KeyFile: server.KeyFile, ClientCAFile: ca.File}
	tokenFile := filepath.Join(t.TempDir(), "upstream-token")
	if err := os.WriteFile(tokenFile, []byte("maestro-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	c := sim.LoopbackConfig()
	c.SourceTLS, c.BrokerTLS, c.BearerToken = files, files, "maestro-token"
	srv, err := sim.Start(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if err := srv.CreateConsumer(cluster); err != nil {
		t.Fatal(err)
	}
	rec, _ := startRecorder(t, srv, func(c *record.Config) {
		c.SourceTLS, c.BrokerTLS, c.Token = files, files, "proxy-token"
		c.Upstream = transport.ClientTLS{CAFile: ca.File, CertFile: proxyClient.CertFile, KeyFile: proxyClient.KeyFile, TokenFile: tokenFile}
	})
	dial := func(addr string, token string, certs ...tls.Certificate) rawClient {
		opts := []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: ca.Pool, Certificates: certs}))}
		if token != "" {
			opts = append(opts, grpc.WithPerRPCCredentials(bearer(token)))
		}
		cc, err := grpc.NewClient(addr, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close() })
		return rawClient{cc}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ev, err := maestro.NewSpecEvent(maestro.TypeSpecCreate, "secure-source", sdkclient.ConfigMapWork(cluster, "w"), maestro.EventOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := maestro.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	if _, md, err := dial(rec.BrokerAddr(), "proxy-token", client.TLS).subscribe(ctx, t, maestro.AgentSubscription(cluster)); err != nil || len(md.Get(maestro.SubscriptionIDHeader)) != 1 {
		t.Fatalf("subscribe with certificate and token: %v %v", md, err)
	}
	if err := dial(rec.SourceAddr(), "proxy-token", client.TLS).publish(ctx, publishRequest(b)); err != nil {
		t.Fatalf("publish with certificate and token: %v", err)
	}
	if err := dial(rec.SourceAddr(), "", client.TLS).publish(ctx, publishRequest(b)); status.Code(err) != codes.Unauthenticated {
		t.Errorf("publish without the token: %v, want Unauthenticated", err)
	}
	if err := dial(rec.SourceAddr(), "maestro-token", client.TLS).publish(ctx, publishRequest(b)); status.Code(err) != codes.Unauthenticated {
		t.Errorf("publish with Maestro's token instead of the recorder's: %v, want Unauthenticated", err)
	}
	if err := dial(rec.SourceAddr(), "proxy-token").publish(ctx, publishRequest(b)); err == nil {
		t.Error("publish without a client certificate went through")
	}
}
