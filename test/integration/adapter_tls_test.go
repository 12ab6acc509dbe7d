package integration

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	apiregv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	aggregator "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"

	"github.com/gpufleet/gpufleet/internal/adaptertest"
	"github.com/gpufleet/gpufleet/pkg/adapter/servingcert"
	"github.com/gpufleet/gpufleet/pkg/localcluster"
	"github.com/gpufleet/gpufleet/pkg/localcluster/clustertest"
)

const servingCertSecret = "gpufleet-metrics-adapter-serving-cert"

// TestIntegrationAdapterVerifiedTLS runs the adapter with its serving
// certificate kept in a Secret: kube-apiserver verifies it (the APIServices
// carry the injected CA bundle, insecureSkipTLSVerify false) and reaches
// every metrics API. A reader polls the metrics API through kube-apiserver
// every 100 ms while an admin forces a rotation of the CA and serving
// certificates renew on their own (short lifetimes): no read fails, and the
// adapter serves certificates of the new CA by the end.
func TestIntegrationAdapterVerifiedTLS(t *testing.T) {
	c, client := clustertest.Start(t, localcluster.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	agg, err := aggregator.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	if err := adaptertest.RegisterVerified(ctx, c.Config, port); err != nil {
		t.Fatal(err)
	}
	const delay = 2 * time.Second
	startAdapter(t, c, port,
		"--serving-cert-secret="+adaptertest.Namespace+"/"+servingCertSecret,
		"--serving-cert-service="+adaptertest.ServiceName,
		"--ca-propagation-delay="+delay.String(),
		"--serving-cert-validity=30s", "--ca-validity=10m")
	if err := adaptertest.WaitAvailable(ctx, c.Config, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	sec, err := client.CoreV1().Secrets(adaptertest.Namespace).Get(ctx, servingCertSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range servingcert.DefaultAPIServices {
		as, err := agg.ApiregistrationV1().APIServices().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if as.Spec.InsecureSkipTLSVerify || !bytes.Equal(as.Spec.CABundle, sec.Data[servingcert.KeyCABundle]) {
			t.Fatalf("APIService %s: insecureSkipTLSVerify=%t, caBundle equal to the Secret's ca.crt: %t; want false and true",
				name, as.Spec.InsecureSkipTLSVerify, bytes.Equal(as.Spec.CABundle, sec.Data[servingcert.KeyCABundle]))
		}
	}
	firstCAKey := sec.Data[servingcert.KeyCAKey]
	firstServed := servedSerial(t, port)

	h := watchHistory(ctx, t, client, agg, sec.ResourceVersion)
	r := startReader(ctx, client)
	time.Sleep(2 * time.Second)
	sec.Annotations[servingcert.AnnotationRotate] = "test-1"
	if _, err := client.CoreV1().Secrets(adaptertest.Namespace).Update(ctx, sec, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The rotation ends when the old CA has left the bundle and every
	// APIService carries the new one; the serving certificate also renews
	// on its own (30 s lifetime) meanwhile.
	var last string
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		s, err := client.CoreV1().Secrets(adaptertest.Namespace).Get(ctx, servingCertSecret, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		n := bytes.Count(s.Data[servingcert.KeyCABundle], []byte("BEGIN CERTIFICATE"))
		last = fmt.Sprintf("ca.key changed: %t, CAs in bundle: %d", !bytes.Equal(s.Data[servingcert.KeyCAKey], firstCAKey), n)
		if bytes.Equal(s.Data[servingcert.KeyCAKey], firstCAKey) || n != 1 {
			return false, nil
		}
		for _, name := range servingcert.DefaultAPIServices {
			as, err := agg.ApiregistrationV1().APIServices().Get(ctx, name, metav1.GetOptions{})
			if err != nil || !bytes.Equal(as.Spec.CABundle, s.Data[servingcert.KeyCABundle]) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("forced rotation did not complete: %s: %v", last, err)
	}
	// Keep reading through the bundle change and one renewal of the
	// serving certificate.
	time.Sleep(25 * time.Second)
	reads, failures := r.stop()
	if reads < 200 {
		t.Fatalf("only %d reads in the test: the reader did not run", reads)
	}
	if len(failures) > 0 {
		t.Fatalf("%d of %d reads through kube-apiserver failed during the rotation; first: %s", len(failures), reads, failures[0])
	}
	if err := h.check(); err != nil {
		t.Fatal(err)
	}
	if served := servedSerial(t, port); served == firstServed {
		t.Fatalf("the adapter still serves its first certificate (serial %s)", served)
	}
	t.Logf("%d reads every 100 ms through kube-apiserver during a forced CA rotation and serving-certificate renewals: 0 failed", reads)
}

// reader reads a metrics API through kube-apiserver every 100 ms.
type reader struct {
	done     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	reads    int
	failures []string
}

func startReader(ctx context.Context, client kubernetes.Interface) *reader {
	r := &reader{done: make(chan struct{})}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-r.done:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			// Served by the adapter through the aggregator's proxy, not
			// from kube-apiserver's discovery cache.
			for _, path := range []string{"/apis/custom.metrics.k8s.io/v1beta2", "/apis/external.metrics.k8s.io/v1beta1"} {
				rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				_, err := client.Discovery().RESTClient().Get().AbsPath(path).DoRaw(rctx)
				cancel()
				r.mu.Lock()
				r.reads++
				if err != nil {
					r.failures = append(r.failures, fmt.Sprintf("%s at %s: %v", path, time.Now().Format(time.StampMilli), err))
				}
				r.mu.Unlock()
			}
		}
	}()
	return r
}

func (r *reader) stop() (int, []string) {
	close(r.done)
	r.wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reads, r.failures
}

// servedSerial is the serial number of the certificate the adapter serves.
func servedSerial(t *testing.T, port int) string {
	t.Helper()
	conn, err := tls.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // reads the served certificate only
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// history records, in etcd order (resourceVersion), every serving
// certificate written to the Secret and every CA bundle written to the
// APIServices, to check the rotation's invariant exactly rather than by
// sampling: a certificate is only ever served once every APIService's
// bundle verifies it, and a bundle never stops verifying the certificate
// being served.
type history struct {
	mu     sync.Mutex
	events []historyEvent
	errs   []string
}

type historyEvent struct {
	rv     int64
	name   string // "" for the Secret, else the APIService
	cert   []byte // the Secret's tls.crt
	bundle []byte // the APIService's caBundle
}

func watchHistory(ctx context.Context, t *testing.T, client kubernetes.Interface, agg aggregator.Interface, fromRV string) *history {
	t.Helper()
	h := &history{}
	sw, err := client.CoreV1().Secrets(adaptertest.Namespace).Watch(ctx, metav1.ListOptions{
		FieldSelector: "metadata.name=" + servingCertSecret, ResourceVersion: fromRV})
	if err != nil {
		t.Fatal(err)
	}
	aw, err := agg.ApiregistrationV1().APIServices().Watch(ctx, metav1.ListOptions{ResourceVersion: fromRV})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sw.Stop)
	t.Cleanup(aw.Stop)
	record := func(rvs, name string, cert, bundle []byte) {
		rv, err := strconv.ParseInt(rvs, 10, 64)
		h.mu.Lock()
		defer h.mu.Unlock()
		if err != nil {
			h.errs = append(h.errs, "resourceVersion "+rvs+" is not a number")
			return
		}
		h.events = append(h.events, historyEvent{rv: rv, name: name, cert: cert, bundle: bundle})
	}
	go func() {
		for ev := range sw.ResultChan() {
			if s, ok := ev.Object.(*corev1.Secret); ok {
				record(s.ResourceVersion, "", s.Data[servingcert.KeyCert], nil)
			}
		}
	}()
	go func() {
		for ev := range aw.ResultChan() {
			if as, ok := ev.Object.(*apiregv1.APIService); ok && slices.Contains(servingcert.DefaultAPIServices, as.Name) {
				record(as.ResourceVersion, as.Name, nil, as.Spec.CABundle)
			}
		}
	}()
	// The starting state: the certificate served, then the bundles.
	sec, err := client.CoreV1().Secrets(adaptertest.Namespace).Get(ctx, servingCertSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	record("0", "", sec.Data[servingcert.KeyCert], nil)
	for _, name := range servingcert.DefaultAPIServices {
		as, err := agg.ApiregistrationV1().APIServices().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		record("0", as.Name, nil, as.Spec.CABundle)
	}
	return h
}

// check replays the history in resourceVersion order.
func (h *history) check() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.errs) > 0 {
		return errors.New(strings.Join(h.errs, "; "))
	}
	evs := slices.Clone(h.events)
	slices.SortStableFunc(evs, func(a, b historyEvent) int { return cmp.Compare(a.rv, b.rv) })
	bundles := map[string][]byte{}
	var cert []byte
	certs, changes := 0, 0
	verify := func(bundle, certPEM []byte) error {
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(bundle) {
			return errors.New("the bundle holds no certificate")
		}
		block, _ := pem.Decode(certPEM)
		if block == nil {
			return errors.New("tls.crt holds no certificate")
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return err
		}
		// Trust, not expiry, is checked: at the end of the test the first
		// certificates have expired.
		_, err = c.Verify(x509.VerifyOptions{Roots: roots, DNSName: adaptertest.ServiceName + "." + adaptertest.Namespace + ".svc", CurrentTime: c.NotAfter.Add(-time.Second)})
		return err
	}
	for _, ev := range evs {
		if ev.name == "" {
			if bytes.Equal(ev.cert, cert) {
				continue
			}
			cert = ev.cert
			certs++
			for name, b := range bundles {
				if err := verify(b, cert); err != nil {
					return fmt.Errorf("resourceVersion %d: the Secret's new serving certificate does not verify against APIService %s's CA bundle: %v", ev.rv, name, err)
				}
			}
			continue
		}
		if bytes.Equal(bundles[ev.name], ev.bundle) {
			continue
		}
		bundles[ev.name] = ev.bundle
		changes++
		if err := verify(ev.bundle, cert); err != nil {
			return fmt.Errorf("resourceVersion %d: APIService %s's new CA bundle does not verify the serving certificate: %v", ev.rv, ev.name, err)
		}
	}
	if certs < 3 || changes < 3+2*len(servingcert.DefaultAPIServices) {
		return fmt.Errorf("the history holds %d serving certificates and %d bundle changes: a CA rotation and a renewal should give at least 3 and %d", certs, changes, 3+2*len(servingcert.DefaultAPIServices))
	}
	return nil
}
