package localcluster

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// keyPair is a certificate with its private key, PEM encoded.
type keyPair struct {
	cert    *x509.Certificate
	key     crypto.Signer
	certPEM []byte
	keyPEM  []byte
}

// certRequest says what a leaf certificate is for.
type certRequest struct {
	commonName   string
	organization []string
	dnsNames     []string
	ips          []net.IP
	server       bool
	client       bool
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

// newCA makes a self-signed certificate authority valid for a year.
func newCA(commonName string) (*keyPair, error) {
	return create(&x509.Certificate{
		Subject:               pkix.Name{CommonName: commonName},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}, nil)
}

// issue signs a leaf certificate for req with the CA.
func (ca *keyPair) issue(req certRequest) (*keyPair, error) {
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: req.commonName, Organization: req.organization},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		DNSNames:    req.dnsNames,
		IPAddresses: req.ips,
	}
	if req.server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	if req.client {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	return create(tmpl, ca)
}

// create generates a key and a certificate from tmpl, valid for a year,
// signed by parent, or self-signed when parent is nil.
func create(tmpl *x509.Certificate, parent *keyPair) (*keyPair, error) {
	name := tmpl.Subject.CommonName
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating %s key: %w", name, err)
	}
	if tmpl.SerialNumber, err = rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127)); err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(365*24*time.Hour)
	parentCert, parentKey := tmpl, crypto.Signer(key)
	if parent != nil {
		parentCert, parentKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, key.Public(), parentKey)
	if err != nil {
		return nil, fmt.Errorf("signing certificate for %s: %w", name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	return &keyPair{
		cert:    cert,
		key:     key,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  keyPEM,
	}, nil
}

// write stores the pair as dir/name.crt and dir/name.key and returns both paths.
func (kp *keyPair) write(dir, name string) (certFile, keyFile string, err error) {
	certFile = filepath.Join(dir, name+".crt")
	keyFile = filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, kp.certPEM, 0o600); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(keyFile, kp.keyPEM, 0o600); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

// pki is every credential a local control plane needs, written to disk.
type pki struct {
	ca                            *keyPair
	dir                           string
	caFile, caKeyFile             string
	servingCertFile, servingKey   string
	adminCert, adminKey           []byte
	adminCertFile, adminKeyFile   string
	caPEM                         []byte
	frontProxyCAFile              string
	proxyClientCert, proxyClientK string
	saKeyFile, saPubFile          string
}

// newPKI generates a cluster CA, the apiserver serving certificate, an admin
// client certificate (system:masters), the front-proxy CA with the
// aggregator's proxy client certificate, and the service-account signing key.
//
// extraIPs are more addresses the serving certificate is valid for: the
// node address and the kubernetes Service address when pods reach the
// apiserver (a real node).
func newPKI(dir string, extraIPs ...net.IP) (*pki, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	p := &pki{dir: dir}
	ca, err := newCA("gpufleet-local-ca")
	if err != nil {
		return nil, err
	}
	if p.caFile, p.caKeyFile, err = ca.write(dir, "ca"); err != nil {
		return nil, err
	}
	p.caPEM = ca.certPEM
	p.ca = ca

	serving, err := ca.issue(certRequest{
		commonName: "kube-apiserver",
		dnsNames:   []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
		ips:        append([]net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, extraIPs...),
		server:     true,
	})
	if err != nil {
		return nil, err
	}
	if p.servingCertFile, p.servingKey, err = serving.write(dir, "apiserver"); err != nil {
		return nil, err
	}

	admin, err := ca.issue(certRequest{commonName: "gpufleet-admin", organization: []string{"system:masters"}, client: true})
	if err != nil {
		return nil, err
	}
	if p.adminCertFile, p.adminKeyFile, err = admin.write(dir, "admin"); err != nil {
		return nil, err
	}
	p.adminCert, p.adminKey = admin.certPEM, admin.keyPEM

	frontCA, err := newCA("gpufleet-front-proxy-ca")
	if err != nil {
		return nil, err
	}
	if p.frontProxyCAFile, _, err = frontCA.write(dir, "front-proxy-ca"); err != nil {
		return nil, err
	}
	proxy, err := frontCA.issue(certRequest{commonName: frontProxyClientName, client: true})
	if err != nil {
		return nil, err
	}
	if p.proxyClientCert, p.proxyClientK, err = proxy.write(dir, "front-proxy-client"); err != nil {
		return nil, err
	}

	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating service-account key: %w", err)
	}
	saPEM, err := encodeKey(saKey)
	if err != nil {
		return nil, err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(saKey.Public())
	if err != nil {
		return nil, err
	}
	p.saKeyFile = filepath.Join(dir, "sa.key")
	p.saPubFile = filepath.Join(dir, "sa.pub")
	if err := os.WriteFile(p.saKeyFile, saPEM, 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(p.saPubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o600); err != nil {
		return nil, err
	}
	return p, nil
}

// frontProxyClientName is the common name of the aggregator's proxy client
// certificate, the one name allowed to set X-Remote-* headers.
const frontProxyClientName = "front-proxy-client"

// issueClient writes a client certificate for user (in groups) signed by the
// cluster CA to the pki directory as name.crt and name.key.
func (p *pki) issueClient(name, user string, groups ...string) (certFile, keyFile string, err error) {
	kp, err := p.ca.issue(certRequest{commonName: user, organization: groups, client: true})
	if err != nil {
		return "", "", err
	}
	return kp.write(p.dir, name)
}
