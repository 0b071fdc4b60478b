package sim

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	pbv1 "open-cluster-management.io/sdk-go/pkg/cloudevents/generic/options/grpc/protobuf/v1"

	"github.com/cereplay/cereplay/maestro"
)

// testCA is a throwaway certificate authority that signs a server and a
// client certificate, written as PEM files into a temporary folder.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
	dir  string
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sim test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &testCA{cert: cert, key: key, pool: x509.NewCertPool(), dir: t.TempDir()}
	ca.pool.AddCert(cert)
	writePEM(t, filepath.Join(ca.dir, "ca.crt"), "CERTIFICATE", der)
	return ca
}

// issue writes name.crt and name.key signed by the CA and returns the pair.
func (ca *testCA) issue(t *testing.T, name string, usage x509.ExtKeyUsage) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(ca.dir, name+".crt"), "CERTIFICATE", der)
	writePEM(t, filepath.Join(ca.dir, name+".key"), "EC PRIVATE KEY", keyDER)
	pair, err := tls.LoadX509KeyPair(filepath.Join(ca.dir, name+".crt"), filepath.Join(ca.dir, name+".key"))
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

func writePEM(t *testing.T, path, kind string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestTLS serves both gRPC ports with TLS 1.3, the broker with mutual TLS:
// a client with a certificate from the CA subscribes, one without is
// refused, and a plaintext client is refused.
func TestTLS(t *testing.T) {
	ca := newTestCA(t)
	ca.issue(t, "server", x509.ExtKeyUsageServerAuth)
	client := ca.issue(t, "agent", x509.ExtKeyUsageClientAuth)
	files := func(clientCA bool) TLSFiles {
		f := TLSFiles{CertFile: filepath.Join(ca.dir, "server.crt"), KeyFile: filepath.Join(ca.dir, "server.key")}
		if clientCA {
			f.ClientCAFile = filepath.Join(ca.dir, "ca.crt")
		}
		return f
	}
	srv := startSim(t, func(c *Config) { c.SourceTLS, c.BrokerTLS = files(false), files(true) })
	if err := srv.CreateConsumer("c1"); err != nil {
		t.Fatal(err)
	}
	connect := func(addr string, certs ...tls.Certificate) error {
		cfg := &tls.Config{RootCAs: ca.pool, Certificates: certs, MinVersion: tls.VersionTLS12}
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
		c.BrokerTLS = TLSFiles{CertFile: filepath.Join(ca.dir, "missing.crt"), KeyFile: filepath.Join(ca.dir, "missing.key")}
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
