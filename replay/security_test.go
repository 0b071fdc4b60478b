package replay

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cereplay/cereplay/internal/testpki"
	"github.com/cereplay/cereplay/sim"
)

// TestReplaySecurity replays against sim over TLS, mutual TLS and with a
// bearer token, with certificates the test makes. The right settings
// deliver everything; each wrong one (another CA, an expired certificate, no
// client certificate under mTLS, a wrong token) fails the run before it
// sends anything, with one line naming the addresses and the cause. The
// token appears nowhere: not in the log, the problems or any results file.
func TestReplaySecurity(t *testing.T) {
	t.Parallel()
	ca, other := testpki.NewCA(t, "ca"), testpki.NewCA(t, "other-ca")
	server := ca.Issue(t, "server", x509.ExtKeyUsageServerAuth)
	past := time.Now().Add(-48 * time.Hour)
	expiredServer := ca.IssueFor(t, "expired-server", x509.ExtKeyUsageServerAuth, past, past.Add(24*time.Hour))
	client := ca.Issue(t, "client", x509.ExtKeyUsageClientAuth)
	expiredClient := ca.IssueFor(t, "expired-client", x509.ExtKeyUsageClientAuth, past, past.Add(24*time.Hour))
	stranger := other.Issue(t, "stranger", x509.ExtKeyUsageClientAuth)

	const token, wrongToken = "tok-5f1d0c9a-never-in-any-output", "tok-0000-also-secret"
	secrets := t.TempDir()
	tokenFile, wrongTokenFile := filepath.Join(secrets, "token"), filepath.Join(secrets, "wrong-token")
	for f, v := range map[string]string{tokenFile: token + "\n", wrongTokenFile: wrongToken} {
		if err := os.WriteFile(f, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	trace := t.TempDir()
	testTrace{Clusters: 2, Works: 2}.write(t, trace)

	withCert := func(p testpki.Pair) TLS { return TLS{CAFile: ca.File, CertFile: p.CertFile, KeyFile: p.KeyFile} }
	for _, tc := range []struct {
		name        string
		serverCert  testpki.Pair
		mtls        bool
		serverToken string
		client      TLS
		cause       string // "" when the run must succeed
	}{
		{"TLS", server, false, "", TLS{CAFile: ca.File}, ""},
		{"TLS, another CA", server, false, "", TLS{CAFile: other.File}, "certificate signed by unknown authority"},
		{"TLS, expired server certificate", expiredServer, false, "", TLS{CAFile: ca.File}, "certificate has expired"},
		{"mTLS", server, true, "", withCert(client), ""},
		{"mTLS, no client certificate", server, true, "", TLS{CAFile: ca.File}, "certificate required"},
		{"mTLS, expired client certificate", server, true, "", withCert(expiredClient), "tls: expired certificate"},
		{"mTLS, client certificate of another CA", server, true, "", withCert(stranger), "certificate required"},
		{"token", server, false, token, TLS{CAFile: ca.File, TokenFile: tokenFile}, ""},
		{"token, wrong one", server, false, token, TLS{CAFile: ca.File, TokenFile: wrongTokenFile}, "missing or wrong bearer token"},
		{"token, none", server, false, token, TLS{CAFile: ca.File}, "missing or wrong bearer token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := simConfig()
			files := sim.TLSFiles{CertFile: tc.serverCert.CertFile, KeyFile: tc.serverCert.KeyFile}
			if tc.mtls {
				files.ClientCAFile = ca.File
			}
			c.SourceTLS, c.BrokerTLS, c.BearerToken = files, files, tc.serverToken
			s := startSim(t, c)
			for i := range 2 {
				if err := s.CreateConsumer(cluster(i)); err != nil {
					t.Fatal(err)
				}
			}
			out := filepath.Join(t.TempDir(), "run")
			cfg := baseConfig(s, trace, out)
			cfg.Max, cfg.TLS = true, tc.client
			if tc.cause != "" {
				cfg.ConnectTimeout = time.Second // a refusal is for good: no need to wait the default
			}
			var log bytes.Buffer
			cfg.Log = &logWriter{b: &log}
			res, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			sum := res.Summary
			problems := strings.Join(sum.Problems, "; ")
			if tc.cause == "" {
				if !res.OK() || sum.SpecsSent != 4 || sum.StatusesSent != 4 {
					t.Fatalf("ok %v, %d specs and %d statuses sent, problems %q\nlog:\n%s", res.OK(), sum.SpecsSent, sum.StatusesSent, problems, log.String())
				}
			} else {
				if res.OK() || !strings.Contains(problems, "could not subscribe") || !strings.Contains(problems, tc.cause) ||
					!strings.Contains(problems, s.SourceAddr()) || !strings.Contains(problems, s.BrokerAddr()) || strings.Contains(problems, "\n") {
					t.Fatalf("ok %v, problems %q: want one line naming %s, %s and %q", res.OK(), problems, s.SourceAddr(), s.BrokerAddr(), tc.cause)
				}
				if tc.cause == "certificate required" && !strings.Contains(problems, "the server wants a client certificate signed by a CA it trusts") {
					t.Errorf("problems %q give no hint of what the server wants", problems)
				}
				if sum.SpecsSent != 0 || sum.StatusesSent != 0 || simReceived(s) != 0 {
					t.Fatalf("refused, yet %d specs and %d statuses counted sent, %v received by sim", sum.SpecsSent, sum.StatusesSent, simReceived(s))
				}
				checkAccounting(t, trace, out)
			}
			for _, secret := range []string{token, wrongToken} {
				if where := findSecret(t, secret, out, log.String(), problems); where != "" {
					t.Errorf("the token is in %s", where)
				}
			}
		})
	}
}

// findSecret says where in the run folder (every file, the outcomes
// record by record), or in the given texts, secret appears ("" nowhere).
func findSecret(t *testing.T, secret, dir string, texts ...string) string {
	t.Helper()
	for i, s := range texts {
		if strings.Contains(s, secret) {
			return "text " + string(rune('0'+i))
		}
	}
	found := ""
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(secret)) {
			found = path
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found != "" {
		return found
	}
	// Outcome segments are compressed: look in each record.
	for _, recs := range readOutcomes(t, dir) {
		for _, rec := range recs {
			b, err := json.Marshal(rec)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(b, []byte(secret)) || bytes.Contains(rec.Data, []byte(secret)) {
				return "outcome record " + rec.Actor
			}
		}
	}
	return ""
}

// A stream refused under mTLS can fail with only "broken pipe" (gRPC
// writes before it reads the server's alert): the message that ends the
// run says what TLS refused instead, from a probe of the address.
func TestExplainTLSRefusal(t *testing.T) {
	t.Parallel()
	ca := testpki.NewCA(t, "ca")
	server := ca.Issue(t, "server", x509.ExtKeyUsageServerAuth)
	c := simConfig()
	c.SourceTLS = sim.TLSFiles{CertFile: server.CertFile, KeyFile: server.KeyFile}
	c.BrokerTLS = sim.TLSFiles{CertFile: server.CertFile, KeyFile: server.KeyFile, ClientCAFile: ca.File}
	s := startSim(t, c)
	tlsCfg, _, err := TLS{CAFile: ca.File}.Load()
	if err != nil {
		t.Fatal(err)
	}
	r := &runner{tlsCfg: tlsCfg}
	got := r.explainTLS(s.BrokerAddr(), "write tcp 127.0.0.1:1->"+s.BrokerAddr()+": write: broken pipe")
	if !strings.Contains(got, "TLS: remote error: tls: certificate required (the server wants a client certificate") {
		t.Fatalf("explained as %q", got)
	}
	const token = "sim: missing or wrong bearer token in the authorization metadata"
	if got := r.explainTLS(s.SourceAddr(), token); got != token {
		t.Errorf("a cause TLS did not make became %q", got)
	}
	if got := (&runner{}).explainTLS(s.BrokerAddr(), "EOF"); got != "EOF" {
		t.Errorf("without TLS, EOF became %q", got)
	}
}
