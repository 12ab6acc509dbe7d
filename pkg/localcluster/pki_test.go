package localcluster

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
)

func TestPKIChains(t *testing.T) {
	dir := t.TempDir()
	p, err := newPKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(p.caPEM) {
		t.Fatal("CA PEM does not parse")
	}
	serving, err := tls.LoadX509KeyPair(p.servingCertFile, p.servingKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(serving.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"127.0.0.1", "localhost", "kubernetes.default.svc"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: host, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("serving certificate for %s: %v", host, err)
		}
	}

	admin, err := tls.X509KeyPair(p.adminCert, p.adminKey)
	if err != nil {
		t.Fatal(err)
	}
	adminLeaf, err := x509.ParseCertificate(admin.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := adminLeaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("admin client certificate: %v", err)
	}
	if got := adminLeaf.Subject.Organization; len(got) != 1 || got[0] != "system:masters" {
		t.Errorf("admin organization = %v, want [system:masters]", got)
	}
	// The admin credential must not also be a valid proxy client: the
	// front proxy has its own CA.
	frontPEM, err := os.ReadFile(p.frontProxyCAFile)
	if err != nil {
		t.Fatal(err)
	}
	front := x509.NewCertPool()
	front.AppendCertsFromPEM(frontPEM)
	if _, err := adminLeaf.Verify(x509.VerifyOptions{Roots: front, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("admin certificate verifies against the front-proxy CA")
	}
	proxy, err := tls.LoadX509KeyPair(p.proxyClientCert, p.proxyClientK)
	if err != nil {
		t.Fatal(err)
	}
	proxyLeaf, _ := x509.ParseCertificate(proxy.Certificate[0])
	if _, err := proxyLeaf.Verify(x509.VerifyOptions{Roots: front, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("proxy client certificate: %v", err)
	}
	if proxyLeaf.Subject.CommonName != frontProxyClientName {
		t.Errorf("proxy client CN = %q, want %q", proxyLeaf.Subject.CommonName, frontProxyClientName)
	}
	for _, f := range []string{p.caKeyFile, p.servingKey, p.saKeyFile, p.proxyClientK} {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s is readable by others: %v", f, st.Mode())
		}
	}
}
