package servingcert

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"maps"
	"math/big"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
)

const (
	day         = 24 * time.Hour
	testNS      = "gpufleet-system"
	testService = "metrics-adapter"
	testSecret  = "metrics-adapter-serving-cert"
	// testDNSName is the name kube-apiserver verifies.
	testDNSName = testService + "." + testNS + ".svc"
)

// t0 is a whole second, and the validities below divide by 3 into whole
// seconds, so every time in the simulations is a whole second.
var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func testOptions() *Options {
	return &Options{
		Namespace: testNS, SecretName: testSecret, ServiceName: testService,
		APIServices:      DefaultAPIServices,
		CAValidity:       90 * day,
		CertValidity:     27 * day,
		PropagationDelay: time.Minute,
	}
}

// apply writes u into sec as the controller does: Data and Annotations
// replaced, the rest kept. sec is not modified.
func apply(sec *corev1.Secret, u *update) *corev1.Secret {
	var out *corev1.Secret
	if sec == nil {
		out = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: testSecret},
			Type:       corev1.SecretTypeTLS,
		}
	} else {
		out = sec.DeepCopy()
	}
	out.Data = make(map[string][]byte, len(u.data))
	for k, v := range u.data {
		out.Data[k] = bytes.Clone(v)
	}
	out.Annotations = maps.Clone(u.annotations)
	return out
}

func mustDecide(t *testing.T, o *Options, sec *corev1.Secret, injected bool, now time.Time) (*update, time.Time) {
	t.Helper()
	u, next, err := o.decide(sec, injected, now)
	if err != nil {
		t.Fatalf("decide(injected=%v, now=%v) = error %v", injected, now, err)
	}
	return u, next
}

// bootstrapSecret is the Secret a controller creates at now.
func bootstrapSecret(t *testing.T, o *Options, now time.Time) *corev1.Secret {
	t.Helper()
	u, _ := mustDecide(t, o, nil, false, now)
	if u == nil {
		t.Fatal("decide(nil Secret) = no update, want the first contents")
	}
	return apply(nil, u)
}

func parseCerts(t *testing.T, what string, pemData []byte) []*x509.Certificate {
	t.Helper()
	certs, err := certutil.ParseCertsPEM(pemData)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return certs
}

// verify checks certPEM the way kube-apiserver does with bundlePEM as
// the APIService's caBundle.
func verify(certPEM, bundlePEM []byte, now time.Time) error {
	certs, err := certutil.ParseCertsPEM(certPEM)
	if err != nil {
		return err
	}
	cas, err := certutil.ParseCertsPEM(bundlePEM)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	for _, ca := range cas {
		roots.AddCert(ca)
	}
	_, err = certs[0].Verify(x509.VerifyOptions{
		Roots: roots, DNSName: testDNSName, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	return err
}

// checkServable fails unless the Secret holds a key pair a TLS server
// loads and whose certificate verifies against the Secret's own bundle.
func checkServable(t *testing.T, sec *corev1.Secret, now time.Time) {
	t.Helper()
	if _, err := tls.X509KeyPair(sec.Data[KeyCert], sec.Data[KeyKey]); err != nil {
		t.Errorf("tls.crt/tls.key do not load as a key pair: %v", err)
	}
	if err := verify(sec.Data[KeyCert], sec.Data[KeyCABundle], now); err != nil {
		t.Errorf("tls.crt does not verify against ca.crt at %v: %v", now, err)
	}
	c := read(sec.Data, sec.Annotations, testDNSName, now)
	if c.signer == nil {
		t.Errorf("CA unusable after the write: %s", c.caProblem)
	}
	if c.cert == nil {
		t.Errorf("serving certificate unusable after the write: %s", c.certProblem)
	}
}

func TestBootstrap(t *testing.T) {
	o := testOptions()
	u, next, err := o.decide(nil, false, t0)
	if err != nil || u == nil {
		t.Fatalf("decide(nil Secret) = %v, %v, want an update", u, err)
	}
	if !next.Equal(t0) {
		t.Errorf("next = %v, want now (%v): the write is to be followed by another look", next, t0)
	}
	for _, k := range []string{KeyCABundle, KeyCAKey, KeyCert, KeyKey} {
		if len(u.data[k]) == 0 {
			t.Errorf("bootstrap wrote no %s", k)
		}
	}
	sec := apply(nil, u)
	checkServable(t, sec, t0)
	// kube-apiserver dials <service>.<namespace>.svc.
	leaf := parseCerts(t, "tls.crt", sec.Data[KeyCert])[0]
	if err := leaf.VerifyHostname(testDNSName); err != nil {
		t.Errorf("serving certificate: %v", err)
	}
	cas := parseCerts(t, "ca.crt", sec.Data[KeyCABundle])
	if len(cas) != 1 || !cas[0].IsCA {
		t.Errorf("ca.crt holds %d certificates (first is CA: %v), want one CA", len(cas), len(cas) > 0 && cas[0].IsCA)
	}
	// Valid for a whole lifetime from now.
	if want := t0.Add(o.CertValidity); !leaf.NotAfter.Equal(want) {
		t.Errorf("serving certificate NotAfter = %v, want %v", leaf.NotAfter, want)
	}
	if want := t0.Add(o.CAValidity); !cas[0].NotAfter.Equal(want) {
		t.Errorf("CA NotAfter = %v, want %v", cas[0].NotAfter, want)
	}
	// Nothing more to do right away.
	if u, next := mustDecide(t, o, sec, false, t0); u != nil {
		t.Errorf("decide right after bootstrap wrote again: %s", u.reason)
	} else if !next.After(t0) {
		t.Errorf("decide right after bootstrap: next = %v, want after now (%v)", next, t0)
	}
}

// step is one write of the Secret in a simulation.
type step struct {
	at            time.Time
	kind          string // create, ca, cert, bundle, annotations
	injected      bool   // what decide was told
	reason        string
	before, after *corev1.Secret
}

func kindOf(before, after *corev1.Secret) string {
	switch {
	case before == nil:
		return "create"
	case !bytes.Equal(before.Data[KeyCAKey], after.Data[KeyCAKey]):
		return "ca"
	case !bytes.Equal(before.Data[KeyCert], after.Data[KeyCert]):
		return "cert"
	case !bytes.Equal(before.Data[KeyCABundle], after.Data[KeyCABundle]):
		return "bundle"
	default:
		return "annotations"
	}
}

// sim runs decide as a controller would, against APIServices that take the
// Secret's bundle whenever injectOK says they can.
type sim struct {
	t   *testing.T
	o   *Options
	now time.Time
	sec *corev1.Secret
	// carried is the bundle the APIServices carry (nil: none yet).
	carried  []byte
	injectOK func(now time.Time) bool
	onStep   func(step)
	steps    []step
}

func (s *sim) run(until time.Time) {
	t := s.t
	t.Helper()
	for s.now.Before(until) {
		if len(s.steps) > 2000 {
			t.Fatalf("more than 2000 writes by %v: runaway", s.now)
		}
		injected := false
		if s.sec != nil && len(s.sec.Data[KeyCABundle]) > 0 && s.injectOK(s.now) {
			s.carried = s.sec.Data[KeyCABundle]
			injected = true
		}
		u, next, err := s.o.decide(s.sec, injected, s.now)
		if err != nil {
			t.Fatalf("at %v: decide = error %v", s.now, err)
		}
		if u != nil {
			after := apply(s.sec, u)
			st := step{at: s.now, kind: kindOf(s.sec, after), injected: injected, reason: u.reason, before: s.sec, after: after}
			if u.warning {
				t.Errorf("at %v: a %s write of a healthy Secret is a warning: %s", s.now, st.kind, u.reason)
			}
			// The invariant: what the Secret serves from now on verifies
			// against what the APIServices carry (they have not seen this
			// write yet) and against the Secret's new bundle.
			if s.carried != nil {
				if err := verify(after.Data[KeyCert], s.carried, s.now); err != nil {
					t.Errorf("at %v, after %s write (%s): tls.crt does not verify against the bundle the APIServices carry: %v", s.now, st.kind, u.reason, err)
				}
			}
			checkServable(t, after, s.now)
			had := ""
			if s.sec != nil {
				had = s.sec.Annotations[annotationInjected]
			}
			if got := after.Annotations[annotationInjected]; !injected && got != "" && got != had {
				t.Errorf("at %v: injection recorded (%q) though decide was told the APIServices do not carry the bundle", s.now, got)
			}
			s.steps = append(s.steps, st)
			if s.onStep != nil {
				s.onStep(st)
			}
			s.sec = after
			if !next.Equal(s.now) {
				t.Errorf("at %v: a write returned next = %v, want now", s.now, next)
			}
			continue
		}
		if !next.After(s.now) {
			t.Fatalf("at %v: no write, and next = %v is not after now: the controller would spin", s.now, next)
		}
		// Nothing may be due before next: a controller sleeping until next
		// must not miss a step.
		for _, p := range []time.Time{s.now.Add(next.Sub(s.now) / 2), next.Add(-time.Millisecond)} {
			if !p.After(s.now) {
				continue
			}
			if u, _, err := s.o.decide(s.sec, injected, p); err != nil || u != nil {
				reason := ""
				if u != nil {
					reason = u.reason
				}
				t.Fatalf("at %v decide said next = %v, but at %v it writes (%s) or fails (%v)", s.now, next, p, reason, err)
			}
		}
		s.now = next
	}
}

func TestDecideCARotationOverTime(t *testing.T) {
	o := testOptions()
	const outage = 2 * time.Minute
	var outageUntil time.Time
	s := &sim{t: t, o: o, now: t0}
	// Each time a new CA joins, the APIServices cannot be updated for a
	// while (say kube-apiserver is restarting).
	s.injectOK = func(now time.Time) bool { return !now.Before(outageUntil) }
	s.onStep = func(st step) {
		if st.kind == "ca" {
			outageUntil = st.at.Add(outage)
		}
	}
	s.run(t0.Add(130 * day))

	if len(s.steps) == 0 || s.steps[0].kind != "create" || !s.steps[0].at.Equal(t0) {
		t.Fatalf("first write: want the Secret created at %v", t0)
	}
	var caSteps []int
	for i, st := range s.steps {
		t.Logf("%v %-11s injected=%-5v %s", st.at.Sub(t0), st.kind, st.injected, st.reason)
		if st.kind == "ca" {
			caSteps = append(caSteps, i)
		}
	}
	// CA issued at 0 rotates at 60d (a third of 90d left); its successor,
	// issued at 60d, at 120d.
	if len(caSteps) != 2 {
		t.Fatalf("%d CA rotations in 130 days, want 2 (at 60d and 120d)", len(caSteps))
	}
	for n, i := range caSteps {
		ca := s.steps[i]
		oldCA := parseCerts(t, "old ca.crt", ca.before.Data[KeyCABundle])[0]
		if want := renewAt(oldCA); !ca.at.Equal(want) {
			t.Errorf("rotation %d: new CA at %v, want when a third of the old CA's life is left (%v)", n, ca.at.Sub(t0), want.Sub(t0))
		}
		if i+4 >= len(s.steps) {
			t.Fatalf("rotation %d: only %d writes after the new CA, want 4", n, len(s.steps)-i-1)
		}
		inj, cert, drop, reinj := s.steps[i+1], s.steps[i+2], s.steps[i+3], s.steps[i+4]
		if got := []string{ca.kind, inj.kind, cert.kind, drop.kind, reinj.kind}; strings.Join(got, ",") != "ca,annotations,cert,bundle,annotations" {
			t.Fatalf("rotation %d: writes %v, want [ca annotations cert bundle annotations]", n, got)
		}

		// 1. The new CA joins the bundle; the old stays; the served
		// certificate is untouched.
		bundle := parseCerts(t, "ca.crt", ca.after.Data[KeyCABundle])
		if len(bundle) != 2 || !bundle[1].Equal(oldCA) || bundle[0].Equal(oldCA) {
			t.Errorf("rotation %d: bundle after the new CA has %d CAs, want [new, old]", n, len(bundle))
		}
		if !bytes.Equal(ca.after.Data[KeyCert], ca.before.Data[KeyCert]) || !bytes.Equal(ca.after.Data[KeyKey], ca.before.Data[KeyKey]) {
			t.Errorf("rotation %d: the serving certificate changed with the new CA", n)
		}
		if _, ok := ca.after.Annotations[annotationInjected]; ok {
			t.Errorf("rotation %d: the new bundle is marked injected before any APIService carries it", n)
		}
		newCA := bundle[0]

		// 2. The injection is recorded once the APIServices carry it,
		// not during the outage.
		if inj.at.Before(ca.at.Add(outage)) || !inj.injected {
			t.Errorf("rotation %d: injection recorded at %v (told injected=%v); the APIServices took the bundle only at %v", n, inj.at.Sub(t0), inj.injected, ca.at.Add(outage).Sub(t0))
		}
		at, ok := read(inj.after.Data, inj.after.Annotations, testDNSName, inj.at).injectedAt(fingerprint(ca.after.Data[KeyCABundle]))
		if !ok || !at.Equal(inj.at) {
			t.Errorf("rotation %d: %s = %q, want the new bundle's fingerprint and %v", n, annotationInjected, inj.after.Annotations[annotationInjected], inj.at)
		}

		// 3. The serving certificate moves to the new CA a propagation
		// delay after the injection (and not much later).
		if d := cert.at.Sub(inj.at); d < o.PropagationDelay || d > o.PropagationDelay+time.Second {
			t.Errorf("rotation %d: serving certificate reissued %v after the injection, want the propagation delay (%v)", n, d, o.PropagationDelay)
		}
		leaf := parseCerts(t, "tls.crt", cert.after.Data[KeyCert])[0]
		if err := leaf.CheckSignatureFrom(newCA); err != nil {
			t.Errorf("rotation %d: the reissued serving certificate is not signed by the new CA: %v", n, err)
		}
		if !bytes.Equal(cert.after.Data[KeyCABundle], ca.after.Data[KeyCABundle]) {
			t.Errorf("rotation %d: the bundle changed with the reissued serving certificate", n)
		}

		// 4. The old CA leaves a propagation delay later.
		if d := drop.at.Sub(cert.at); d < o.PropagationDelay || d > o.PropagationDelay+time.Second {
			t.Errorf("rotation %d: old CA dropped %v after the new serving certificate, want the propagation delay (%v)", n, d, o.PropagationDelay)
		}
		if after := parseCerts(t, "ca.crt", drop.after.Data[KeyCABundle]); len(after) != 1 || !after[0].Equal(newCA) {
			t.Errorf("rotation %d: bundle after the drop has %d CAs, want only the new one", n, len(after))
		}
		if !bytes.Equal(drop.after.Data[KeyCert], cert.after.Data[KeyCert]) {
			t.Errorf("rotation %d: the serving certificate changed with the drop", n)
		}
		if got := reinj.after.Annotations[annotationInjected]; !strings.HasPrefix(got, fingerprint(drop.after.Data[KeyCABundle])+" ") {
			t.Errorf("rotation %d: after the drop, %s = %q, want the new bundle's fingerprint", n, annotationInjected, got)
		}
	}

	// Serving certificates signed by the same CA are renewed when a third
	// of their life is left (27d: every 18d).
	renewals := 0
	for _, st := range s.steps {
		if st.kind != "cert" {
			continue
		}
		old := parseCerts(t, "old tls.crt", st.before.Data[KeyCert])[0]
		signer := parseCerts(t, "ca.crt", st.before.Data[KeyCABundle])[0]
		if old.CheckSignatureFrom(signer) != nil {
			continue // moved to a new CA: checked above
		}
		renewals++
		if want := renewAt(old); !st.at.Equal(want) {
			t.Errorf("serving certificate issued %v renewed at %v, want %v", old.NotBefore.Add(clockSkew).Sub(t0), st.at.Sub(t0), want.Sub(t0))
		}
	}
	if renewals < 4 {
		t.Errorf("%d renewals of the serving certificate by the same CA in 130 days, want at least 4", renewals)
	}
}

// A serving certificate that only needs renewing is reissued by the same CA
// at once: the APIServices already trust that CA.
func TestDecideRenewsServingCertWithoutNewInjection(t *testing.T) {
	for _, tc := range []struct {
		name string
		// recorded: the injection of this bundle was recorded at bootstrap
		// time; injected: what decide is told at renewal.
		recorded, injected bool
	}{
		{name: "injection recorded long ago", recorded: true, injected: true},
		{name: "injection recorded, APIService unreachable now", recorded: true, injected: false},
		{name: "APIServices never confirmed", recorded: false, injected: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := testOptions()
			sec := bootstrapSecret(t, o, t0)
			if tc.recorded {
				u, _ := mustDecide(t, o, sec, true, t0)
				if u == nil || u.annotations[annotationInjected] == "" {
					t.Fatal("injection not recorded")
				}
				sec = apply(sec, u)
			}
			leaf := parseCerts(t, "tls.crt", sec.Data[KeyCert])[0]
			due := renewAt(leaf)
			if want := t0.Add(18 * day); !due.Equal(want) {
				t.Fatalf("renewAt = %v, want with a third of 27d left (%v)", due.Sub(t0), want.Sub(t0))
			}
			if u, next := mustDecide(t, o, sec, tc.injected, due.Add(-time.Second)); u != nil {
				t.Fatalf("1s before the renewal: wrote %q", u.reason)
			} else if next.After(due) {
				t.Errorf("1s before the renewal: next = %v, after the renewal (%v)", next, due)
			}
			u, _ := mustDecide(t, o, sec, tc.injected, due)
			if u == nil {
				t.Fatalf("at the renewal time (a third of the life left): no write; the serving certificate would expire at %v", leaf.NotAfter)
			}
			after := apply(sec, u)
			if kindOf(sec, after) != "cert" {
				t.Fatalf("renewal wrote a %s change (%s), want only a new serving certificate", kindOf(sec, after), u.reason)
			}
			if u.warning {
				t.Errorf("a due renewal is logged as a warning: %s", u.reason)
			}
			// Same CA, same bundle: the APIServices need nothing new.
			if err := verify(after.Data[KeyCert], sec.Data[KeyCABundle], due); err != nil {
				t.Errorf("renewed certificate does not verify against the bundle already injected: %v", err)
			}
			newLeaf := parseCerts(t, "tls.crt", after.Data[KeyCert])[0]
			if !newLeaf.NotAfter.Equal(due.Add(o.CertValidity)) {
				t.Errorf("renewed certificate NotAfter = %v, want %v", newLeaf.NotAfter, due.Add(o.CertValidity))
			}
			if tc.recorded && after.Annotations[annotationInjected] != sec.Annotations[annotationInjected] {
				t.Errorf("renewal changed the injection record")
			}
		})
	}
}

// rotateFully runs decide with working APIServices from now until until,
// returning the Secret as it is at until and the writes.
func rotateFully(t *testing.T, o *Options, sec *corev1.Secret, now time.Time, until time.Time) (*corev1.Secret, []step, time.Time) {
	t.Helper()
	s := &sim{t: t, o: o, now: now, sec: sec, injectOK: func(time.Time) bool { return true }}
	s.run(until)
	for _, st := range s.steps {
		if st.at.After(until) {
			t.Fatalf("write at %v, after %v", st.at, until)
		}
	}
	return s.sec, s.steps, until
}

func TestDecideForcedRotation(t *testing.T) {
	o := testOptions()
	sec, _, now := rotateFully(t, o, bootstrapSecret(t, o, t0), t0, t0.Add(time.Hour))
	oldCA := parseCerts(t, "ca.crt", sec.Data[KeyCABundle])[0]

	sec = sec.DeepCopy()
	sec.Annotations[AnnotationRotate] = "2030-01-01"
	u, _ := mustDecide(t, o, sec, true, now)
	if u == nil {
		t.Fatal("setting gpufleet.io/rotate: no write")
	}
	after := apply(sec, u)
	if kindOf(sec, after) != "ca" {
		t.Fatalf("setting gpufleet.io/rotate wrote a %s change (%s), want a new CA", kindOf(sec, after), u.reason)
	}
	if got := after.Annotations[annotationRotated]; got != "2030-01-01" {
		t.Errorf("%s = %q, want the rotate value", annotationRotated, got)
	}
	if !bytes.Equal(after.Data[KeyCert], sec.Data[KeyCert]) {
		t.Errorf("the serving certificate changed with the new CA")
	}

	// The rest of the rotation follows.
	final, steps, end := rotateFully(t, o, after, now, now.Add(time.Hour))
	var kinds []string
	for _, st := range steps {
		kinds = append(kinds, st.kind)
	}
	if got := strings.Join(kinds, ","); got != "annotations,cert,bundle,annotations" {
		t.Errorf("writes after the new CA: %s, want annotations,cert,bundle,annotations", got)
	}
	bundle := parseCerts(t, "ca.crt", final.Data[KeyCABundle])
	if len(bundle) != 1 || bundle[0].Equal(oldCA) {
		t.Fatalf("after the rotation the bundle has %d CAs (old one still first: %v), want the new one only", len(bundle), bundle[0].Equal(oldCA))
	}
	if err := parseCerts(t, "tls.crt", final.Data[KeyCert])[0].CheckSignatureFrom(bundle[0]); err != nil {
		t.Errorf("after the rotation the serving certificate is not signed by the new CA: %v", err)
	}

	// The same value again rotates nothing.
	if final.Annotations[AnnotationRotate] != "2030-01-01" {
		t.Fatalf("the rotate annotation was removed: %v", final.Annotations)
	}
	if u, _ := mustDecide(t, o, final, true, end); u != nil {
		t.Errorf("same rotate value again: wrote %q", u.reason)
	}
	again, steps, _ := rotateFully(t, o, final, end, end.Add(day))
	if len(steps) != 0 || !bytes.Equal(again.Data[KeyCAKey], final.Data[KeyCAKey]) {
		t.Errorf("same rotate value: %d writes in the next day, want none", len(steps))
	}

	// A new value rotates again.
	next := final.DeepCopy()
	next.Annotations[AnnotationRotate] = "2030-01-02"
	if u, _ := mustDecide(t, o, next, true, end); u == nil || kindOf(next, apply(next, u)) != "ca" {
		t.Errorf("a new rotate value: want a new CA")
	}
}

// The propagation delay counts from the injection and from the new serving
// certificate, whatever the fraction of a second the clock shows.
func TestDecidePropagationDelayWithSubsecondClock(t *testing.T) {
	o := testOptions()
	o.PropagationDelay = 10 * time.Second
	start := t0.Add(900 * time.Millisecond)
	sec, _, now := rotateFully(t, o, bootstrapSecret(t, o, start), start, start.Add(time.Minute))
	sec.Annotations[AnnotationRotate] = "now"
	u, _ := mustDecide(t, o, sec, true, now)
	sec = apply(sec, u)
	// The APIServices take the new bundle at now (x.9s).
	u, _ = mustDecide(t, o, sec, true, now)
	if u == nil || u.annotations[annotationInjected] == "" {
		t.Fatal("injection not recorded")
	}
	sec = apply(sec, u)
	injectedAt := now

	early := injectedAt.Add(o.PropagationDelay - 100*time.Millisecond)
	if u, _ := mustDecide(t, o, sec, true, early); u != nil {
		t.Errorf("serving certificate moved to the new CA %v after the APIServices took its bundle, before the propagation delay (%v): %s",
			early.Sub(injectedAt), o.PropagationDelay, u.reason)
	}
	at := injectedAt.Add(o.PropagationDelay)
	u, _ = mustDecide(t, o, sec, true, at)
	if u == nil || kindOf(sec, apply(sec, u)) != "cert" {
		t.Fatalf("propagation delay after the injection: no new serving certificate")
	}
	sec = apply(sec, u)
	early = at.Add(o.PropagationDelay - 100*time.Millisecond)
	if u, _ := mustDecide(t, o, sec, true, early); u != nil {
		t.Errorf("old CA dropped %v after the new serving certificate, before the propagation delay (%v): %s",
			early.Sub(at), o.PropagationDelay, u.reason)
	}
}

func TestDecideRepairsCorruptSecrets(t *testing.T) {
	o := testOptions()
	now := t0.Add(time.Hour)
	base := bootstrapSecret(t, o, t0)
	baseCA := read(base.Data, base.Annotations, testDNSName, now).signer
	if baseCA == nil {
		t.Fatal("bootstrap CA unusable")
	}
	otherCA, err := newCA("other", t0, o.CAValidity)
	if err != nil {
		t.Fatal(err)
	}
	otherLeaf, err := newLeaf(otherCA, o.dnsNames(), t0, o.CertValidity)
	if err != nil {
		t.Fatal(err)
	}
	otherService := *o
	otherService.ServiceName = "someone-else"
	otherNameLeaf, err := newLeaf(baseCA, otherService.dnsNames(), t0, o.CertValidity)
	if err != nil {
		t.Fatal(err)
	}
	expiredLeaf, err := newLeaf(baseCA, o.dnsNames(), t0.Add(-60*day), 30*day)
	if err != nil {
		t.Fatal(err)
	}
	expired := bootstrapSecret(t, o, t0.Add(-100*day))

	set := func(kv ...string) func(*corev1.Secret) {
		return func(s *corev1.Secret) {
			for i := 0; i < len(kv); i += 2 {
				s.Data[kv[i]] = []byte(kv[i+1])
			}
		}
	}
	for _, tc := range []struct {
		name    string
		corrupt func(*corev1.Secret)
		keepCA  bool // the CA is fine and must stay
		warning bool // some write must be a warning
	}{
		{name: "garbage ca.crt", corrupt: set(KeyCABundle, "garbage"), warning: true},
		{name: "ca.crt PEM that is no certificate", corrupt: set(KeyCABundle, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), warning: true},
		{name: "no ca.crt", corrupt: func(s *corev1.Secret) { delete(s.Data, KeyCABundle) }, warning: true},
		{name: "ca.key of another CA", corrupt: set(KeyCAKey, string(otherCA.keyPEM)), warning: true},
		{name: "garbage ca.key", corrupt: set(KeyCAKey, "garbage"), warning: true},
		{name: "first certificate of ca.crt is not a CA", corrupt: func(s *corev1.Secret) {
			s.Data[KeyCABundle] = append(bytes.Clone(s.Data[KeyCert]), s.Data[KeyCABundle]...)
		}, warning: true},
		{name: "garbage tls.key", corrupt: set(KeyKey, "garbage"), keepCA: true, warning: true},
		{name: "no tls.crt", corrupt: func(s *corev1.Secret) { delete(s.Data, KeyCert) }, keepCA: true, warning: true},
		{name: "tls.key of another certificate", corrupt: set(KeyKey, string(otherLeaf.keyPEM)), keepCA: true, warning: true},
		{name: "tls.crt signed by an unknown CA", corrupt: set(KeyCert, string(otherLeaf.certPEM), KeyKey, string(otherLeaf.keyPEM)), keepCA: true, warning: true},
		{name: "tls.crt for another Service", corrupt: set(KeyCert, string(otherNameLeaf.certPEM), KeyKey, string(otherNameLeaf.keyPEM)), keepCA: true, warning: true},
		{name: "expired serving certificate", corrupt: set(KeyCert, string(expiredLeaf.certPEM), KeyKey, string(expiredLeaf.keyPEM)), keepCA: true, warning: true},
		{name: "expired CA", corrupt: func(s *corev1.Secret) { s.Data, s.Annotations = expired.Data, expired.Annotations }, warning: true},
		{name: "empty data", corrupt: func(s *corev1.Secret) { s.Data = nil }, warning: true},
		{name: "garbage annotations", corrupt: func(s *corev1.Secret) {
			s.Annotations = map[string]string{annotationInjected: "x", annotationCertSince: "yesterday", annotationRotated: "", "other": "kept"}
		}, keepCA: true},
	} {
		for _, injected := range []bool{false, true} {
			name := tc.name + "/APIServices unreachable"
			if injected {
				name = tc.name + "/APIServices take the bundle"
			}
			t.Run(name, func(t *testing.T) {
				sec := base.DeepCopy()
				tc.corrupt(sec)
				corrupted := sec.DeepCopy()
				now := now
				warned := false
				for i := 0; i < 20; i++ {
					u, next, err := o.decide(sec, injected, now)
					if err != nil {
						t.Fatalf("write %d: decide = error %v, want a repair", i, err)
					}
					if u == nil {
						if next.Sub(now) > 2*o.PropagationDelay {
							break
						}
						now = next // the next step of a rotation
						continue
					}
					warned = warned || u.warning
					t.Logf("%v: %s (warning %v)", now.Sub(t0), u.reason, u.warning)
					sec = apply(sec, u)
				}
				checkServable(t, sec, now)
				if warned != tc.warning {
					t.Errorf("a write was a warning: %v, want %v", warned, tc.warning)
				}
				if tc.keepCA {
					if !bytes.Equal(sec.Data[KeyCAKey], base.Data[KeyCAKey]) {
						t.Errorf("ca.key replaced, want the usable CA kept")
					}
					if got := parseCerts(t, "ca.crt", sec.Data[KeyCABundle]); !got[0].Equal(baseCA.cert) {
						t.Errorf("signing CA replaced, want the usable CA kept")
					}
				}
				if corrupted.Annotations["other"] != "" && sec.Annotations["other"] != "kept" {
					t.Errorf("another tool's annotation was changed: %q", sec.Annotations["other"])
				}
			})
		}
	}
}

func TestParseSecretRef(t *testing.T) {
	for _, tc := range []struct {
		in       string
		ns, name string // empty: an error
	}{
		{in: "gpufleet-system/gpufleet-metrics-adapter-serving-cert", ns: "gpufleet-system", name: "gpufleet-metrics-adapter-serving-cert"},
		{in: "ns/name.with.dots", ns: "ns", name: "name.with.dots"},
		{in: "name-only"},
		{in: "/name"},
		{in: "ns/"},
		{in: ""},
		{in: "Upper/name"},
		{in: "ns/Name"},
		{in: "ns/a/b"},
		{in: "ns.with.dots/name"},
		{in: "ns/name "},
	} {
		ns, name, err := ParseSecretRef(tc.in)
		if tc.ns == "" {
			if err == nil {
				t.Errorf("ParseSecretRef(%q) = %q, %q, want an error", tc.in, ns, name)
				continue
			}
			if msg := err.Error(); !strings.Contains(msg, "NAMESPACE/NAME") || !strings.Contains(msg, `"`+tc.in+`"`) {
				t.Errorf("ParseSecretRef(%q) error %q: want the value quoted and the NAMESPACE/NAME form", tc.in, msg)
			}
			continue
		}
		if err != nil || ns != tc.ns || name != tc.name {
			t.Errorf("ParseSecretRef(%q) = %q, %q, %v; want %q, %q", tc.in, ns, name, err, tc.ns, tc.name)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	valid := func() *Options {
		return &Options{
			Namespace: testNS, SecretName: testSecret, ServiceName: testService, APIServices: DefaultAPIServices,
			CAValidity: DefaultCAValidity, CertValidity: DefaultCertValidity, PropagationDelay: DefaultPropagationDelay,
		}
	}
	for _, tc := range []struct {
		name   string
		change func(*Options)
		want   []string // substrings of the error; none: valid
	}{
		{name: "defaults", change: func(*Options) {}},
		{name: "shortest cert validity", change: func(o *Options) {
			o.PropagationDelay = time.Second
			o.CertValidity = 9 * time.Second
			o.CAValidity = 9 * time.Second
		}},
		{name: "no namespace", change: func(o *Options) { o.Namespace = "" }, want: []string{"namespace and name are required"}},
		{name: "no secret name", change: func(o *Options) { o.SecretName = "" }, want: []string{"namespace and name are required"}},
		{name: "bad service name", change: func(o *Options) { o.ServiceName = "1-metrics" }, want: []string{`service name "1-metrics"`}},
		{name: "no service name", change: func(o *Options) { o.ServiceName = "" }, want: []string{`service name ""`}},
		{name: "zero propagation delay", change: func(o *Options) { o.PropagationDelay = 0 }, want: []string{"propagation delay 0s: must be positive"}},
		{name: "negative propagation delay", change: func(o *Options) { o.PropagationDelay = -time.Second }, want: []string{"must be positive"}},
		{name: "cert validity under 9 propagation delays", change: func(o *Options) { o.PropagationDelay = time.Hour; o.CertValidity = 9*time.Hour - time.Second },
			want: []string{"serving certificate validity 8h59m59s", "9 x the propagation delay (9h0m0s)"}},
		{name: "CA shorter than the serving certificate", change: func(o *Options) { o.CAValidity = o.CertValidity - time.Second },
			want: []string{"CA validity", "at least the serving certificate validity"}},
		{name: "every error", change: func(o *Options) {
			*o = Options{ServiceName: "x_y", PropagationDelay: time.Minute, CertValidity: time.Minute}
		},
			want: []string{"namespace and name", `service name "x_y"`, "9 x the propagation delay", "CA validity"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := valid()
			tc.change(o)
			err := o.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Errorf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error with %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to contain %q", err, w)
				}
			}
			// One line per invalid option.
			wantLines := 1
			if tc.name == "every error" {
				wantLines = len(tc.want)
			}
			if got := len(strings.Split(err.Error(), "\n")); got != wantLines {
				t.Errorf("Validate() = %q: %d lines, want %d", err, got, wantLines)
			}
		})
	}
}

// A 512-bit RSA CA (made with openssl: Go refuses to make or use one), as
// an old or hand-made Secret may hold.
const (
	rsa512CACert = `-----BEGIN CERTIFICATE-----
MIIBczCCAR2gAwIBAgIUZ6uHIcLqefYQpAv+YzgxD9djv/QwDQYJKoZIhvcNAQEL
BQAwDTELMAkGA1UEAwwCY2EwIBcNMjYxMjA3MDU1MjI1WhgPMjEyNjExMTMwNTUy
MjVaMA0xCzAJBgNVBAMMAmNhMFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAMCizDDh
Pb3M2WTIE3IbE4k3bYqD0sUmso3gBvfCk1gZVU04cBzqHDi9zo17Jrnduo7oV1gg
/xGcVR5NzPq007UCAwEAAaNTMFEwHQYDVR0OBBYEFH6yDNpNTPVi4F+CNGG9Mhqe
F93yMB8GA1UdIwQYMBaAFH6yDNpNTPVi4F+CNGG9MhqeF93yMA8GA1UdEwEB/wQF
MAMBAf8wDQYJKoZIhvcNAQELBQADQQAeS4UkhJvaXkBA4BHS8G021xMl8wfzFjV2
IRAu9GZgIBtm7cHJuqIAfOxSnAlfZJICXsx4gnZo/zxI0W1JcL9W
-----END CERTIFICATE-----
`
	rsa512CAKey = `-----BEGIN PRIVATE KEY-----
MIIBVAIBADANBgkqhkiG9w0BAQEFAASCAT4wggE6AgEAAkEAwKLMMOE9vczZZMgT
chsTiTdtioPSxSayjeAG98KTWBlVTThwHOocOL3OjXsmud26juhXWCD/EZxVHk3M
+rTTtQIDAQABAkEAkhXji94EmH9VDZy9QndOJW0nYTf/CwwBtJ4EKrggTVn4CS1p
3bzh8XLMyYxWqLSTitbKqAsP6l6KNVMmM8VugQIhAN4dhwdI9Wg1RNdao/4qQRvx
Q5/4RuWl9JeVgFJQo1nZAiEA3gX72vSuTV/6nNmUbBgipRadqYOhr9HQ4gDk6Gzl
4z0CIEsX9ofa/cUuhUi9x0Xt6TdWOUPDP8zyb6A0Fj8+Lgv5AiAx2q4fEGpDPZYM
ul61lwXQhC+K7N/VlwuMdB7ygeFtEQIgD9rIh3khFaopsm+golChkYAw+j6yPJvg
SdUN9+YMwgo=
-----END PRIVATE KEY-----
`
)

// handMadeCA is a CA valid around t0, changed by mod.
func handMadeCA(t *testing.T, mod func(*x509.Certificate)) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "hand-made"},
		NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(90 * day),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	mod(tmpl)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM, err = keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	return certPEM, keyPEM
}

// A CA that parses, has its key and has not expired, but cannot sign a
// serving certificate kube-apiserver accepts, is replaced: the controller
// must neither fail for ever nor rewrite tls.crt on every look.
func TestDecideReplacesCAThatCannotSign(t *testing.T) {
	o := testOptions()
	for _, tc := range []struct {
		name string
		ca   func(t *testing.T) (certPEM, keyPEM []byte)
	}{
		{name: "CA limited to client certificates", ca: func(t *testing.T) ([]byte, []byte) {
			return handMadeCA(t, func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth} })
		}},
		{name: "CA name-constrained to another domain", ca: func(t *testing.T) ([]byte, []byte) {
			return handMadeCA(t, func(c *x509.Certificate) { c.PermittedDNSDomains = []string{"example.com"} })
		}},
		{name: "CA not valid yet", ca: func(t *testing.T) ([]byte, []byte) {
			return handMadeCA(t, func(c *x509.Certificate) { c.NotBefore = t0.Add(time.Hour) })
		}},
		{name: "CA with a 512-bit RSA key", ca: func(*testing.T) ([]byte, []byte) {
			return []byte(rsa512CACert), []byte(rsa512CAKey)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			certPEM, keyPEM := tc.ca(t)
			sec := apply(nil, &update{data: map[string][]byte{KeyCABundle: certPEM, KeyCAKey: keyPEM}})
			writes := 0
			for {
				u, _, err := o.decide(sec, false, t0)
				if err != nil {
					t.Fatalf("after %d writes: decide = error %v, want the CA replaced", writes, err)
				}
				if u == nil {
					break
				}
				if writes++; writes > 5 {
					t.Fatalf("more than 5 writes and still not done; the last: %s", u.reason)
				}
				sec = apply(sec, u)
			}
			checkServable(t, sec, t0)
			if bytes.Equal(sec.Data[KeyCAKey], keyPEM) {
				t.Errorf("the CA was kept")
			}
		})
	}
}

// Every write decide asks for leaves a Secret whose CA and serving
// certificate are both usable.
func TestDecideEveryWriteIsServable(t *testing.T) {
	o := testOptions()
	base := bootstrapSecret(t, o, t0)
	for _, injected := range []bool{false, true} {
		sec := base.DeepCopy()
		sec.Data[KeyKey] = []byte("garbage")
		u, _ := mustDecide(t, o, sec, injected, t0)
		if u == nil {
			t.Fatalf("injected=%v: a garbage tls.key is not repaired", injected)
		}
		c := read(u.data, u.annotations, testDNSName, t0)
		if c.signer == nil || c.cert == nil {
			t.Errorf("injected=%v: the write %q leaves the Secret unusable: CA problem %q, certificate problem %q", injected, u.reason, c.caProblem, c.certProblem)
		}
	}
}
