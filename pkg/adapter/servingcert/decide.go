package servingcert

import (
	"crypto/x509"
	"fmt"
	"maps"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// update is one write of the Secret: its whole new data and annotations,
// and why.
type update struct {
	data        map[string][]byte
	annotations map[string]string
	reason      string
	// warning: the Secret was unusable (reason says how).
	warning bool
}

// decide returns the next write of the Secret (nil: none) and when to look
// again if nothing happens before. sec is the Secret as last read (nil: it
// does not exist); injected says whether every APIService carries its CA
// bundle. One step at a time, so each write is checked against the
// Secret's resourceVersion before the next.
func (o *Options) decide(sec *corev1.Secret, injected bool, now time.Time) (*update, time.Time, error) {
	if sec == nil {
		return o.bootstrap(now)
	}
	c := read(sec.Data, sec.Annotations, o.dnsNames()[0], now)
	data := maps.Clone(sec.Data)
	if data == nil {
		data = map[string][]byte{}
	}
	ann := maps.Clone(sec.Annotations)
	if ann == nil {
		ann = map[string]string{}
	}

	// 1. The signing CA: rotate it when unusable, forced, or due.
	if why, warn := o.caRotation(c, now); why != "" {
		ca, err := newCA(o.ServiceName, now, o.CAValidity)
		if err != nil {
			return nil, time.Time{}, err
		}
		// The old CAs stay trusted: the certificate being served may be
		// theirs.
		data[KeyCABundle] = encodeBundle(append([]*x509.Certificate{ca.cert}, c.bundle...))
		data[KeyCAKey] = ca.keyPEM
		delete(ann, annotationInjected)
		if c.rotate != "" {
			ann[annotationRotated] = c.rotate
		}
		if c.cert == nil {
			// Nothing usable is served: no verification to keep.
			if err := o.issue(data, ann, ca, now); err != nil {
				return nil, time.Time{}, err
			}
		}
		return &update{data: data, annotations: ann, reason: why, warning: warn}, now, nil
	}

	// 2. Record when every APIService first carried the bundle.
	fp := fingerprint(data[KeyCABundle])
	injectedAt, recorded := c.injectedAt(fp)
	var noted string
	if injected && !recorded {
		ann[annotationInjected] = fp + " " + now.UTC().Format(time.RFC3339Nano)
		noted = "every APIService carries the CA bundle"
	}

	// 3. The serving certificate.
	if c.cert == nil {
		if err := o.issue(data, ann, c.signer, now); err != nil {
			return nil, time.Time{}, err
		}
		return &update{data: data, annotations: ann, reason: "the serving certificate is unusable (" + c.certProblem + "): issued a new one", warning: true}, now, nil
	}
	if noted != "" {
		return &update{data: data, annotations: ann, reason: noted}, now, nil
	}
	next := renewAt(c.signer.cert)
	why, newCA := o.certRenewal(c, now)
	switch {
	case why == "":
		next = earliest(next, renewAt(c.cert.cert))
	case !newCA:
		// Same CA: the APIServices already trust it.
		if err := o.issue(data, ann, c.signer, now); err != nil {
			return nil, time.Time{}, err
		}
		return &update{data: data, annotations: ann, reason: why}, now, nil
	case !recorded:
		// Wait until the bundle is injected (the controller retries).
		next = now.Add(time.Second)
	case now.Before(injectedAt.Add(o.PropagationDelay)):
		next = injectedAt.Add(o.PropagationDelay)
	default:
		if err := o.issue(data, ann, c.signer, now); err != nil {
			return nil, time.Time{}, err
		}
		return &update{data: data, annotations: ann, reason: why}, now, nil
	}

	// 4. CAs that no longer sign what is served leave the bundle, once
	// every replica had time to switch.
	if len(c.bundle) > 1 && c.cert.cert.CheckSignatureFrom(c.signer.cert) == nil {
		if since := c.certSince.Add(o.PropagationDelay); now.Before(since) {
			next = earliest(next, since)
		} else {
			data[KeyCABundle] = encodeBundle(c.bundle[:1])
			delete(ann, annotationInjected)
			return &update{data: data, annotations: ann, reason: fmt.Sprintf("dropped %d old CAs from the bundle", len(c.bundle)-1)}, now, nil
		}
	}
	// An expired CA left the bundle when read: write that down.
	if want := encodeBundle(c.bundle); !slices.Equal(want, data[KeyCABundle]) {
		data[KeyCABundle] = want
		delete(ann, annotationInjected)
		return &update{data: data, annotations: ann, reason: "dropped expired CAs from the bundle"}, now, nil
	}
	return nil, next, nil
}

// bootstrap makes the Secret's first contents.
func (o *Options) bootstrap(now time.Time) (*update, time.Time, error) {
	ca, err := newCA(o.ServiceName, now, o.CAValidity)
	if err != nil {
		return nil, time.Time{}, err
	}
	data := map[string][]byte{KeyCABundle: ca.certPEM, KeyCAKey: ca.keyPEM}
	ann := map[string]string{}
	if err := o.issue(data, ann, ca, now); err != nil {
		return nil, time.Time{}, err
	}
	return &update{data: data, annotations: ann, reason: "created a CA and a serving certificate"}, now, nil
}

// issue writes a new serving certificate signed by ca into data.
func (o *Options) issue(data map[string][]byte, ann map[string]string, ca *keyPair, now time.Time) error {
	leaf, err := newLeaf(ca, o.dnsNames(), now, o.CertValidity)
	if err != nil {
		return err
	}
	data[KeyCert], data[KeyKey] = leaf.certPEM, leaf.keyPEM
	ann[annotationCertSince] = now.UTC().Format(time.RFC3339Nano)
	return nil
}

// caRotation says why the signing CA must be replaced now ("" if not), and
// whether that is because the Secret was unusable.
func (o *Options) caRotation(c *contents, now time.Time) (why string, warning bool) {
	switch {
	case c.signer == nil:
		return "the CA is unusable (" + c.caProblem + "): made a new one", true
	case c.rotate != "" && c.rotate != c.rotated:
		return fmt.Sprintf("rotation requested (%s=%s): made a new CA", AnnotationRotate, c.rotate), false
	case !now.Before(renewAt(c.signer.cert)):
		return fmt.Sprintf("the CA expires at %s: made a new one", c.signer.cert.NotAfter.UTC().Format(time.RFC3339)), false
	}
	return "", false
}

// certRenewal says why the serving certificate must be reissued ("" if
// not), and whether by another CA than its own.
func (o *Options) certRenewal(c *contents, now time.Time) (why string, newCA bool) {
	switch {
	case c.cert.cert.CheckSignatureFrom(c.signer.cert) != nil:
		return "the serving certificate moves to the new CA", true
	case !slices.Equal(c.cert.cert.DNSNames, o.dnsNames()):
		return fmt.Sprintf("the serving certificate names %v, want %v", c.cert.cert.DNSNames, o.dnsNames()), false
	case !now.Before(renewAt(c.cert.cert)):
		return fmt.Sprintf("the serving certificate expires at %s: renewed it", c.cert.cert.NotAfter.UTC().Format(time.RFC3339)), false
	}
	return "", false
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
