package sim

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	pbv1 "open-cluster-management.io/sdk-go/pkg/cloudevents/generic/options/grpc/protobuf/v1"

	"github.com/cereplay/cereplay/internal/testpki"
	"github.com/cereplay/cereplay/maestro"
)

// TestTLS serves both gRPC ports with TLS 1.3, the broker with mutual TLS:
// a client with a certificate from the CA subscribes, one without is
// refused, and a plaintext client is refused.
func TestTLS(t *testing.T) {
	ca := testpki.NewCA(t, "ca")
	server := ca.Issue(t, "server", x509.ExtKeyUsageServerAuth)
	client := ca.Issue(t, "agent", x509.ExtKeyUsageClientAuth).TLS
	files := func(clientCA bool) TLSFiles {
		f := TLSFiles{CertFile: server.CertFile, KeyFile: server.KeyFile}
		if clientCA {
			f.ClientCAFile = ca.File
		}
		return f
	}
	srv := startSim(t, func(c *Config) { c.SourceTLS, c.BrokerTLS = files(false), files(true) })
	if err := srv.CreateConsumer("c1"); err != nil {
		t.Fatal(err)
	}
	connect := func(addr string, certs ...tls.Certificate) error {
		cfg := &tls.Config{RootCAs: ca.Pool, Certificates: certs, MinVersion: tls.VersionTLS12}
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
		if err != nil {
			return err
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		sc, err := pbv1.NewCloudEventServiceClient(conn).Subscribe(ctx, maestro.AgentSubscription("c1"))
		if err != nil {
			return err
		}
		_, err = sc.Header()
		return err
	}
	if err := connect(srv.BrokerAddr(), client); err != nil {
		t.Fatalf("mTLS client refused: %v", err)
	}
	if err := connect(srv.BrokerAddr()); err == nil {
		t.Fatal("broker accepted a client without a certificate")
	}
	if err := connect(srv.SourceAddr()); err != nil {
		t.Fatalf("TLS source port: %v", err)
	}
	plain := dial(t, srv.SourceAddr())
	if _, err := plain.Publish(context.Background(), &pbv1.PublishRequest{Event: golden(t, "01-source-spec-create_request")}); err == nil {
		t.Fatal("TLS port accepted a plaintext client")
	}

	if _, err := Start(context.Background(), func() Config {
		c := LoopbackConfig()
		missing := t.TempDir()
		c.BrokerTLS = TLSFiles{CertFile: filepath.Join(missing, "missing.crt"), KeyFile: filepath.Join(missing, "missing.key")}
		return c
	}()); err == nil {
		t.Fatal("Start accepted missing certificate files")
	}
}

// bearer is per-RPC credentials that send a token without TLS (tests only).
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return false }

func TestBearerToken(t *testing.T) {
	srv := startSim(t, func(c *Config) { c.BearerToken = "s3cret" })
	if err := srv.CreateConsumer(goldenCluster); err != nil {
		t.Fatal(err)
	}
	ev := golden(t, "01-source-spec-create_request")
	for _, tc := range []struct {
		token string
		code  codes.Code
	}{{"", codes.Unauthenticated}, {"wrong", codes.Unauthenticated}, {"s3cret", codes.OK}} {
		opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
		if tc.token != "" {
			opts = append(opts, grpc.WithPerRPCCredentials(bearer(tc.token)))
		}
		conn, err := grpc.NewClient(srv.SourceAddr(), opts...)
		if err != nil {
			t.Fatal(err)
		}
		_, err = pbv1.NewCloudEventServiceClient(conn).Publish(context.Background(), &pbv1.PublishRequest{Event: ev})
		conn.Close()
		if status.Code(err) != tc.code {
			t.Errorf("token %q: %v, want %v", tc.token, err, tc.code)
		}
		bconn, err := grpc.NewClient(srv.BrokerAddr(), opts...)
		if err != nil {
			t.Fatal(err)
		}
		sc, err := pbv1.NewCloudEventServiceClient(bconn).Subscribe(context.Background(), maestro.AgentSubscription(goldenCluster))
		if err == nil {
			_, err = sc.Header()
			if err == nil && tc.code != codes.OK {
				_, err = sc.Recv()
			}
		}
		bconn.Close()
		if status.Code(err) != tc.code {
			t.Errorf("broker subscribe with token %q: %v, want %v", tc.token, err, tc.code)
		}
	}
}
