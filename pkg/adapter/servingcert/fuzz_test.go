package servingcert

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// FuzzRead feeds arbitrary Secret contents to read and decide: neither may
// panic, decide may not fail (a Secret it cannot use is replaced), and
// every write it asks for leaves a usable CA and serving certificate.
func FuzzRead(f *testing.F) {
	o := testOptions()
	now := t0.Add(time.Hour)
	u, _, err := o.decide(nil, false, t0)
	if err != nil {
		f.Fatal(err)
	}
	d, a := u.data, u.annotations
	fp := fingerprint(d[KeyCABundle])
	// A valid Secret, as bootstrapped and once injected.
	f.Add(d[KeyCABundle], d[KeyCAKey], d[KeyCert], d[KeyKey], "", "", "", a[annotationCertSince], false)
	f.Add(d[KeyCABundle], d[KeyCAKey], d[KeyCert], d[KeyKey], "", "", fp+" "+t0.Format(time.RFC3339), a[annotationCertSince], true)
	// A rotation requested, and one already done.
	f.Add(d[KeyCABundle], d[KeyCAKey], d[KeyCert], d[KeyKey], "r1", "", fp+" "+t0.Format(time.RFC3339), a[annotationCertSince], true)
	f.Add(d[KeyCABundle], d[KeyCAKey], d[KeyCert], d[KeyKey], "r1", "r1", "garbage", "garbage", false)
	// A rotation in progress: two CAs, the serving certificate by the old.
	ca2, err := newCA(o.ServiceName, now, o.CAValidity)
	if err != nil {
		f.Fatal(err)
	}
	two := append(append([]byte(nil), ca2.certPEM...), d[KeyCABundle]...)
	f.Add(two, ca2.keyPEM, d[KeyCert], d[KeyKey], "", "", fingerprint(two)+" "+now.Format(time.RFC3339), a[annotationCertSince], true)
	// Pieces swapped or missing.
	f.Add(d[KeyCert], d[KeyKey], d[KeyCABundle], d[KeyCAKey], "", "", "", "", false)
	f.Add([]byte(nil), []byte(nil), d[KeyCert], d[KeyKey], "", "", "", "", true)
	f.Add(d[KeyCABundle], d[KeyCAKey], []byte(nil), []byte("-----BEGIN EC PRIVATE KEY-----\n-----END EC PRIVATE KEY-----\n"), "", "", "", "", false)

	f.Fuzz(func(t *testing.T, caCrt, caKey, tlsCrt, tlsKey []byte, rotate, rotated, injectedAnn, certSince string, injected bool) {
		data := map[string][]byte{KeyCABundle: caCrt, KeyCAKey: caKey, KeyCert: tlsCrt, KeyKey: tlsKey}
		ann := map[string]string{AnnotationRotate: rotate, annotationRotated: rotated, annotationInjected: injectedAnn, annotationCertSince: certSince}
		c := read(data, ann, testDNSName, now)
		if (c.signer == nil) == (c.caProblem == "") {
			t.Errorf("read: signer set %v, CA problem %q: want exactly one", c.signer != nil, c.caProblem)
		}
		if (c.cert == nil) == (c.certProblem == "") {
			t.Errorf("read: cert set %v, cert problem %q: want exactly one", c.cert != nil, c.certProblem)
		}
		if c.signer != nil && (len(c.bundle) == 0 || c.signer.cert != c.bundle[0]) {
			t.Errorf("read: the signer is not the first CA of the bundle")
		}

		sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Annotations: ann}, Data: data}
		u, next, err := o.decide(sec, injected, now)
		if err != nil {
			t.Fatalf("decide = error %v, want a repair", err)
		}
		if u == nil {
			if !next.After(now) {
				t.Errorf("no write, and next = %v is not after now (%v)", next, now)
			}
			return
		}
		w := read(u.data, u.annotations, testDNSName, now)
		if w.signer == nil || w.cert == nil {
			t.Fatalf("the write %q leaves an unusable Secret: CA problem %q, certificate problem %q", u.reason, w.caProblem, w.certProblem)
		}
	})
}
