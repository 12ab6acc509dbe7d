package servingcert

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
)

// The Secret's keys.
const (
	KeyCABundle = "ca.crt"
	KeyCAKey    = "ca.key"
	KeyCert     = corev1.TLSCertKey
	KeyKey      = corev1.TLSPrivateKeyKey
)

// The Secret's annotations.
const (
	// AnnotationRotate forces a rotation of the CA and the serving
	// certificate when set to a value the controller has not rotated for.
	AnnotationRotate = "gpufleet.io/rotate"
	// annotationRotated is the last AnnotationRotate value rotated for.
	annotationRotated = "gpufleet.io/rotated"
	// annotationInjected is "<bundle fingerprint> <RFC 3339 time>" (with
	// fractional seconds, so a delay is never cut short): when
	// every APIService was first seen carrying that bundle.
	annotationInjected = "gpufleet.io/ca-bundle-injected"
	// annotationCertSince is when the serving certificate was issued
	// (RFC 3339), so older CAs leave the bundle only after every replica
	// had time to serve it.
	annotationCertSince = "gpufleet.io/serving-cert-since"
)

// contents is the Secret as read: what is usable and why the rest is not.
type contents struct {
	// bundle is every CA of ca.crt that parses and has not expired,
	// signing CA first.
	bundle []*x509.Certificate
	// signer is bundle[0] with ca.key; nil when unusable (caProblem says
	// why).
	signer    *keyPair
	caProblem string
	// cert is the serving certificate and key; nil when unusable
	// (certProblem says why).
	cert        *keyPair
	certProblem string

	rotate, rotated string
	injected        string
	certSince       time.Time
}

// read parses a Secret's data and annotations; nothing in it can make it
// fail: what does not parse is reported in caProblem and certProblem.
func read(data map[string][]byte, annotations map[string]string, dnsName string, now time.Time) *contents {
	c := &contents{
		rotate:   annotations[AnnotationRotate],
		rotated:  annotations[annotationRotated],
		injected: annotations[annotationInjected],
	}
	if t, err := time.Parse(time.RFC3339Nano, annotations[annotationCertSince]); err == nil {
		c.certSince = t
	}
	c.readCA(data, dnsName, now)
	c.readCert(data, dnsName, now)
	return c
}

func (c *contents) readCA(data map[string][]byte, dnsName string, now time.Time) {
	if len(data[KeyCABundle]) == 0 {
		c.caProblem = "no " + KeyCABundle
		return
	}
	certs, err := certutil.ParseCertsPEM(data[KeyCABundle])
	if err != nil {
		c.caProblem = fmt.Sprintf("%s: %v", KeyCABundle, err)
		return
	}
	for _, ca := range certs {
		if ca.IsCA && now.Before(ca.NotAfter) && !slices.ContainsFunc(c.bundle, ca.Equal) {
			c.bundle = append(c.bundle, ca)
		}
	}
	if len(c.bundle) == 0 || !c.bundle[0].Equal(certs[0]) {
		c.caProblem = fmt.Sprintf("the first certificate of %s (the signing CA) is not a CA or has expired", KeyCABundle)
		return
	}
	key, err := parseKey(data[KeyCAKey], KeyCAKey)
	if err != nil {
		c.caProblem = err.Error()
		return
	}
	if !publicKeyEqual(key.Public(), c.bundle[0].PublicKey) {
		c.caProblem = fmt.Sprintf("%s is not the key of the first certificate of %s", KeyCAKey, KeyCABundle)
		return
	}
	signer := &keyPair{cert: c.bundle[0], key: key, keyPEM: data[KeyCAKey]}
	signer.certPEM, _ = certutil.EncodeCertificates(c.bundle[0])
	// A CA can be parsed and still not issue what kube-apiserver accepts
	// (not yet valid, limited to other uses or names, a key too weak to
	// sign with): try it.
	if err := canIssue(signer, dnsName, now); err != nil {
		c.caProblem = fmt.Sprintf("the CA of %s cannot issue a serving certificate for %s: %v", KeyCABundle, dnsName, err)
		return
	}
	c.signer = signer
}

// canIssue signs a throwaway serving certificate for dnsName with ca (for
// ca's own key: no key is generated) and verifies it against ca at now.
func canIssue(ca *keyPair, dnsName string, now time.Time) error {
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		DNSNames:     []string{dnsName},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(time.Minute),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, ca.key.Public(), ca.key)
	if err != nil {
		return err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	_, err = leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: dnsName, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	return err
}

func (c *contents) readCert(data map[string][]byte, dnsName string, now time.Time) {
	if len(data[KeyCert]) == 0 {
		c.certProblem = "no " + KeyCert
		return
	}
	certs, err := certutil.ParseCertsPEM(data[KeyCert])
	if err != nil {
		c.certProblem = fmt.Sprintf("%s: %v", KeyCert, err)
		return
	}
	key, err := parseKey(data[KeyKey], KeyKey)
	if err != nil {
		c.certProblem = err.Error()
		return
	}
	if !publicKeyEqual(key.Public(), certs[0].PublicKey) {
		c.certProblem = fmt.Sprintf("%s is not the key of %s", KeyKey, KeyCert)
		return
	}
	roots := x509.NewCertPool()
	for _, ca := range c.bundle {
		roots.AddCert(ca)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, DNSName: dnsName, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		c.certProblem = fmt.Sprintf("%s does not verify against %s for %s: %v", KeyCert, KeyCABundle, dnsName, err)
		return
	}
	c.cert = &keyPair{cert: certs[0], key: key, certPEM: data[KeyCert], keyPEM: data[KeyKey]}
}

func parseKey(pemData []byte, name string) (crypto.Signer, error) {
	if len(pemData) == 0 {
		return nil, errors.New("no " + name)
	}
	k, err := keyutil.ParsePrivateKeyPEM(pemData)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: a %T cannot sign", name, k)
	}
	return s, nil
}

func publicKeyEqual(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

// injectedAt returns when every APIService was first seen carrying the
// bundle with fingerprint fp.
func (c *contents) injectedAt(fp string) (time.Time, bool) {
	f, at, ok := strings.Cut(c.injected, " ")
	if !ok || f != fp {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, at)
	return t, err == nil
}

// fingerprint names a CA bundle in annotations.
func fingerprint(bundlePEM []byte) string {
	sum := sha256.Sum256(bundlePEM)
	return hex.EncodeToString(sum[:8])
}

// renewAt is when a third of the certificate's lifetime (from its issue,
// not its backdated NotBefore) is left.
func renewAt(cert *x509.Certificate) time.Time {
	issued := cert.NotBefore.Add(clockSkew)
	return cert.NotAfter.Add(-cert.NotAfter.Sub(issued) / 3)
}

func encodeBundle(certs []*x509.Certificate) []byte {
	b, _ := certutil.EncodeCertificates(certs...)
	return b
}
