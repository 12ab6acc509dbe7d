package servingcert

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"
	apiregv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	aggfake "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset/fake"
)

var secretsGVR = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}

// waitFor polls cond until it holds or timeout passes, then fails with
// cond's last word.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %s", what, timeout, why)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func controllerOptions() Options {
	return Options{
		Namespace: testNS, SecretName: testSecret, ServiceName: testService,
		APIServices:  DefaultAPIServices,
		CAValidity:   2 * time.Hour,
		CertValidity: time.Hour,
		// Short, for the rotation to finish in the test.
		PropagationDelay: 200 * time.Millisecond,
	}
}

func insecureAPIService(name string) *apiregv1.APIService {
	group, version := "", ""
	if v, g, ok := strings.Cut(name, "."); ok {
		group, version = g, v
	}
	return &apiregv1.APIService{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: apiregv1.APIServiceSpec{
			Service:               &apiregv1.ServiceReference{Namespace: testNS, Name: testService},
			Group:                 group,
			Version:               version,
			InsecureSkipTLSVerify: true,
			GroupPriorityMinimum:  100,
			VersionPriority:       100,
		},
	}
}

// fakes are the clients of a cluster whose Secrets keep resourceVersions as
// kube-apiserver does: an update from a stale copy is a conflict (the fake
// clientset alone accepts it).
type fakes struct {
	kube      *kubefake.Clientset
	agg       *aggfake.Clientset
	conflicts atomic.Int32
	creates   atomic.Int32
}

func newFakes(t *testing.T, apiServices []string, objects ...runtime.Object) *fakes {
	t.Helper()
	var aggObjs []runtime.Object
	for _, name := range apiServices {
		aggObjs = append(aggObjs, insecureAPIService(name))
	}
	f := &fakes{kube: kubefake.NewClientset(objects...), agg: aggfake.NewClientset(aggObjs...)}
	var mu sync.Mutex
	rv := 100
	nextRV := func() string {
		mu.Lock()
		defer mu.Unlock()
		rv++
		return strconv.Itoa(rv)
	}
	f.kube.PrependReactor("create", "secrets", func(a k8stesting.Action) (bool, runtime.Object, error) {
		obj := a.(k8stesting.CreateAction).GetObject().(*corev1.Secret)
		if _, err := f.kube.Tracker().Get(secretsGVR, obj.Namespace, obj.Name); err == nil {
			return true, nil, apierrors.NewAlreadyExists(secretsGVR.GroupResource(), obj.Name)
		}
		obj.ResourceVersion = nextRV()
		f.creates.Add(1)
		return false, nil, nil
	})
	f.kube.PrependReactor("update", "secrets", func(a k8stesting.Action) (bool, runtime.Object, error) {
		obj := a.(k8stesting.UpdateAction).GetObject().(*corev1.Secret)
		cur, err := f.kube.Tracker().Get(secretsGVR, obj.Namespace, obj.Name)
		if err != nil {
			return true, nil, err
		}
		if cur.(*corev1.Secret).ResourceVersion != obj.ResourceVersion {
			f.conflicts.Add(1)
			return true, nil, apierrors.NewConflict(secretsGVR.GroupResource(), obj.Name, errors.New("the object has been modified; please apply your changes to the latest version and try again"))
		}
		obj.ResourceVersion = nextRV()
		return false, nil, nil
	})
	return f
}

func (f *fakes) secret(t *testing.T) *corev1.Secret {
	t.Helper()
	sec, err := f.kube.CoreV1().Secrets(testNS).Get(context.Background(), testSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("getting the Secret: %v", err)
	}
	return sec
}

func (f *fakes) apiService(t *testing.T, name string) *apiregv1.APIService {
	t.Helper()
	as, err := f.agg.ApiregistrationV1().APIServices().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("getting APIService %s: %v", name, err)
	}
	return as
}

// setRotate sets gpufleet.io/rotate on the Secret as an admin would.
func (f *fakes) setRotate(t *testing.T, value string) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		sec := f.secret(t)
		if sec.Annotations == nil {
			sec.Annotations = map[string]string{}
		}
		sec.Annotations[AnnotationRotate] = value
		_, err := f.kube.CoreV1().Secrets(testNS).Update(context.Background(), sec, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("setting %s: %v", AnnotationRotate, err)
	}
}

// started is a running controller and its log.
type started struct {
	*Controller
	logger klog.Logger
}

// errors are the error lines the controller logged.
func (s *started) errors() []string {
	var out []string
	for _, e := range s.logger.GetSink().(ktesting.Underlier).GetBuffer().Data() {
		if e.Type == ktesting.LogError {
			out = append(out, fmt.Sprintf("%s: %v", e.Message, e.Err))
		}
	}
	return out
}

func newController(t *testing.T, f *fakes, opts Options) *Controller {
	t.Helper()
	c, err := New(opts, f.kube, f.agg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// start runs c until the test ends; Start's error is returned.
func start(t *testing.T, c *Controller, timeout time.Duration) (*started, error) {
	t.Helper()
	logger := ktesting.NewLogger(t, ktesting.NewConfig(ktesting.BufferLogs(true)))
	ctx, cancel := context.WithCancel(klog.NewContext(context.Background(), logger))
	t.Cleanup(cancel)
	return &started{Controller: c, logger: logger}, c.Start(ctx, timeout)
}

func mustStart(t *testing.T, c *Controller) *started {
	t.Helper()
	s, err := start(t, c, 10*time.Second)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	return s
}

type countingListener struct{ n atomic.Int32 }

func (l *countingListener) Enqueue() { l.n.Add(1) }

// converged says whether the Secret holds one CA, whose bundle every
// APIService carries (recorded in the Secret), and every controller serves
// the Secret's certificate.
func converged(t *testing.T, f *fakes, apiServices []string, cs ...*started) (bool, string) {
	sec := f.secret(t)
	cas, err := certutil.ParseCertsPEM(sec.Data[KeyCABundle])
	if err != nil {
		return false, "ca.crt: " + err.Error()
	}
	if len(cas) != 1 {
		return false, fmt.Sprintf("%d CAs in ca.crt", len(cas))
	}
	for _, name := range apiServices {
		as := f.apiService(t, name)
		if !bytes.Equal(as.Spec.CABundle, sec.Data[KeyCABundle]) || as.Spec.InsecureSkipTLSVerify {
			return false, fmt.Sprintf("APIService %s: caBundle is the Secret's: %v, insecureSkipTLSVerify: %v", name, bytes.Equal(as.Spec.CABundle, sec.Data[KeyCABundle]), as.Spec.InsecureSkipTLSVerify)
		}
	}
	if !strings.HasPrefix(sec.Annotations[annotationInjected], fingerprint(sec.Data[KeyCABundle])+" ") {
		return false, fmt.Sprintf("%s = %q: the injection is not recorded", annotationInjected, sec.Annotations[annotationInjected])
	}
	for i, c := range cs {
		certPEM, keyPEM := c.CurrentCertKeyContent()
		if !bytes.Equal(certPEM, sec.Data[KeyCert]) || !bytes.Equal(keyPEM, sec.Data[KeyKey]) {
			return false, fmt.Sprintf("controller %d does not serve the Secret's tls.crt/tls.key", i)
		}
	}
	return true, ""
}

// checkVerifiable fails unless what each controller serves verifies against
// the caBundle of every APIService, as kube-apiserver checks it.
func checkVerifiable(t *testing.T, f *fakes, apiServices []string, cs ...*started) {
	t.Helper()
	// APIServices first: they change only after the certificate they
	// must verify is served.
	bundles := map[string][]byte{}
	for _, name := range apiServices {
		if as := f.apiService(t, name); len(as.Spec.CABundle) > 0 && !as.Spec.InsecureSkipTLSVerify {
			bundles[name] = as.Spec.CABundle
		}
	}
	for i, c := range cs {
		certPEM, _ := c.CurrentCertKeyContent()
		for name, b := range bundles {
			if err := verify(certPEM, b, time.Now()); err != nil {
				t.Errorf("controller %d serves a certificate APIService %s's caBundle does not verify: %v", i, name, err)
			}
		}
	}
}

func TestControllerBootstrapsInjectsAndRotates(t *testing.T) {
	unrelated := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "unrelated"}, Data: map[string][]byte{"x": []byte("y")}}
	f := newFakes(t, DefaultAPIServices, unrelated)
	c := newController(t, f, controllerOptions())
	if got, want := c.Name(), "secret/"+testNS+"/"+testSecret; got != want {
		t.Errorf("Name() = %q, want %q", got, want)
	}
	s := mustStart(t, c)

	// Start returns once a certificate is served: the Secret's.
	sec := f.secret(t)
	if sec.Type != corev1.SecretTypeTLS {
		t.Errorf("Secret type %q, want %q", sec.Type, corev1.SecretTypeTLS)
	}
	for _, k := range []string{KeyCABundle, KeyCAKey, KeyCert, KeyKey} {
		if len(sec.Data[k]) == 0 {
			t.Errorf("the Secret has no %s", k)
		}
	}
	certPEM, keyPEM := c.CurrentCertKeyContent()
	if !bytes.Equal(certPEM, sec.Data[KeyCert]) || !bytes.Equal(keyPEM, sec.Data[KeyKey]) {
		t.Errorf("CurrentCertKeyContent after Start is not the Secret's tls.crt/tls.key")
	}
	checkServable(t, sec, time.Now())

	waitFor(t, 10*time.Second, "CA bundle injected into every APIService", func() (bool, string) {
		return converged(t, f, DefaultAPIServices, s)
	})
	checkVerifiable(t, f, DefaultAPIServices, s)
	if got := testutil.ToFloat64(c.rotations.WithLabelValues("create")); got != 1 {
		t.Errorf("create writes = %v, want 1", got)
	}

	// The controller asks for its Secret only (RBAC may allow no other).
	for _, a := range f.kube.Actions() {
		if l, ok := a.(k8stesting.ListAction); ok && a.GetResource() == secretsGVR {
			if got, want := l.GetListRestrictions().Fields.String(), "metadata.name="+testSecret; got != want {
				t.Errorf("Secrets listed with field selector %q, want %q", got, want)
			}
		}
	}
	// The fake clientset ignores field selectors: the informer sees the
	// unrelated Secret too, which must stay as it is.
	if u, err := f.kube.CoreV1().Secrets(testNS).Get(context.Background(), "unrelated", metav1.GetOptions{}); err != nil || string(u.Data["x"]) != "y" || len(u.Annotations) != 0 {
		t.Errorf("the unrelated Secret was changed: %v, %v", u, err)
	}

	// A forced rotation: the listener hears of the new certificate, and
	// what is served verifies against the APIServices all along.
	l := &countingListener{}
	c.AddListener(l)
	oldCA := parseCerts(t, "ca.crt", sec.Data[KeyCABundle])[0]
	f.setRotate(t, "1")
	waitFor(t, 10*time.Second, "rotation done", func() (bool, string) {
		checkVerifiable(t, f, DefaultAPIServices, s)
		sec := f.secret(t)
		if sec.Annotations[annotationRotated] != "1" {
			return false, "rotation not started"
		}
		cas := parseCerts(t, "ca.crt", sec.Data[KeyCABundle])
		if cas[0].Equal(oldCA) {
			return false, "old CA still signs"
		}
		if ok, why := converged(t, f, DefaultAPIServices, s); !ok {
			return false, why
		}
		if l.n.Load() == 0 {
			return false, "listener not called"
		}
		return true, ""
	})
	sec = f.secret(t)
	leaf := parseCerts(t, "tls.crt", sec.Data[KeyCert])[0]
	if err := leaf.CheckSignatureFrom(parseCerts(t, "ca.crt", sec.Data[KeyCABundle])[0]); err != nil {
		t.Errorf("after the rotation tls.crt is not signed by the new CA: %v", err)
	}
	for kind, want := range map[string]float64{"ca": 1, "cert": 1, "bundle": 1} {
		if got := testutil.ToFloat64(c.rotations.WithLabelValues(kind)); got != want {
			t.Errorf("%s writes = %v, want %v", kind, got, want)
		}
	}
	if errs := s.errors(); len(errs) > 0 {
		t.Errorf("errors logged: %q", errs)
	}
}

func TestControllerRecreatesDeletedSecret(t *testing.T) {
	f := newFakes(t, DefaultAPIServices)
	c := newController(t, f, controllerOptions())
	s := mustStart(t, c)
	waitFor(t, 10*time.Second, "converged", func() (bool, string) { return converged(t, f, DefaultAPIServices, s) })
	old := f.secret(t)
	l := &countingListener{}
	c.AddListener(l)
	if err := f.kube.CoreV1().Secrets(testNS).Delete(context.Background(), testSecret, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "a new Secret served and injected", func() (bool, string) {
		if _, err := f.kube.CoreV1().Secrets(testNS).Get(context.Background(), testSecret, metav1.GetOptions{}); err != nil {
			return false, err.Error()
		}
		if bytes.Equal(f.secret(t).Data[KeyCAKey], old.Data[KeyCAKey]) {
			return false, "same CA"
		}
		if ok, why := converged(t, f, DefaultAPIServices, s); !ok {
			return false, why
		}
		return l.n.Load() > 0, "listener not called"
	})
	if errs := s.errors(); len(errs) > 0 {
		t.Errorf("errors logged: %q", errs)
	}
}

// Replicas share the Secret: they agree on one CA and certificate, also
// through a rotation, and conflicts are no errors.
func TestControllersShareTheSecret(t *testing.T) {
	f := newFakes(t, DefaultAPIServices)
	c1 := newController(t, f, controllerOptions())
	c2 := newController(t, f, controllerOptions())
	var wg sync.WaitGroup
	var s1, s2 *started
	var err1, err2 error
	wg.Add(2)
	go func() { defer wg.Done(); s1, err1 = start(t, c1, 10*time.Second) }()
	go func() { defer wg.Done(); s2, err2 = start(t, c2, 10*time.Second) }()
	wg.Wait()
	if err1 != nil || err2 != nil {
		t.Fatalf("Start: %v, %v", err1, err2)
	}
	waitFor(t, 10*time.Second, "replicas agree", func() (bool, string) {
		return converged(t, f, DefaultAPIServices, s1, s2)
	})
	if got := f.creates.Load(); got != 1 {
		t.Errorf("%d Secrets created, want 1", got)
	}
	if got := testutil.ToFloat64(c1.rotations.WithLabelValues("create")) + testutil.ToFloat64(c2.rotations.WithLabelValues("create")); got != 1 {
		t.Errorf("create writes counted by the replicas = %v, want 1", got)
	}

	l1, l2 := &countingListener{}, &countingListener{}
	c1.AddListener(l1)
	c2.AddListener(l2)
	oldCA := parseCerts(t, "ca.crt", f.secret(t).Data[KeyCABundle])[0]
	f.setRotate(t, "1")
	waitFor(t, 10*time.Second, "replicas agree after the rotation", func() (bool, string) {
		checkVerifiable(t, f, DefaultAPIServices, s1, s2)
		if parseCerts(t, "ca.crt", f.secret(t).Data[KeyCABundle])[0].Equal(oldCA) {
			return false, "old CA still signs"
		}
		if ok, why := converged(t, f, DefaultAPIServices, s1, s2); !ok {
			return false, why
		}
		return l1.n.Load() > 0 && l2.n.Load() > 0, fmt.Sprintf("listeners called %d and %d times", l1.n.Load(), l2.n.Load())
	})
	// One rotation, not one per replica.
	ca := testutil.ToFloat64(c1.rotations.WithLabelValues("ca")) + testutil.ToFloat64(c2.rotations.WithLabelValues("ca"))
	if ca != 1 {
		t.Errorf("%v new CAs written by the replicas, want 1", ca)
	}
	t.Logf("%d update conflicts", f.conflicts.Load())
	for i, s := range []*started{s1, s2} {
		if errs := s.errors(); len(errs) > 0 {
			t.Errorf("replica %d logged errors: %q", i+1, errs)
		}
	}
}

func TestControllerMissingAPIService(t *testing.T) {
	const missing = "v1beta1.external.metrics.k8s.io"
	present := []string{"v1beta1.custom.metrics.k8s.io", "v1beta2.custom.metrics.k8s.io"}
	f := newFakes(t, present)
	c := newController(t, f, controllerOptions())
	s := mustStart(t, c)
	waitFor(t, 10*time.Second, "an error naming the missing APIService", func() (bool, string) {
		for _, e := range s.errors() {
			if strings.Contains(e, "APIService "+missing+" not found") && strings.Contains(e, "--ca-bundle-apiservices") {
				return true, ""
			}
		}
		return false, fmt.Sprintf("errors logged: %q", s.errors())
	})
	for _, e := range s.errors() {
		for _, p := range present {
			if strings.Contains(e, p) {
				t.Errorf("error names APIService %s, which exists: %s", p, e)
			}
		}
	}
	// The others get the bundle anyway.
	sec := f.secret(t)
	for _, name := range present {
		waitFor(t, 10*time.Second, "bundle in "+name, func() (bool, string) {
			as := f.apiService(t, name)
			return bytes.Equal(as.Spec.CABundle, sec.Data[KeyCABundle]) && !as.Spec.InsecureSkipTLSVerify, "not injected"
		})
	}
	// Not every APIService carries the bundle: no injection is recorded.
	if got := f.secret(t).Annotations[annotationInjected]; got != "" {
		t.Errorf("%s = %q with APIService %s missing", annotationInjected, got, missing)
	}
}

func TestControllerStartTimesOutNamingTheSecret(t *testing.T) {
	f := newFakes(t, DefaultAPIServices)
	f.kube.PrependReactor("create", "secrets", func(a k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(secretsGVR.GroupResource(), testSecret, errors.New("RBAC says no"))
	})
	c := newController(t, f, controllerOptions())
	s, err := start(t, c, 500*time.Millisecond)
	if err == nil {
		t.Fatal("Start = nil with the Secret not creatable, want an error")
	}
	for _, want := range []string{testNS + "/" + testSecret, "create and update"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Start = %q, want it to name %q", err, want)
		}
	}
	waitFor(t, 5*time.Second, "the write error logged", func() (bool, string) {
		for _, e := range s.errors() {
			if strings.Contains(e, "RBAC says no") && strings.Contains(e, testNS+"/"+testSecret) {
				return true, ""
			}
		}
		return false, fmt.Sprintf("errors logged: %q", s.errors())
	})
}

func TestNewValidates(t *testing.T) {
	opts := controllerOptions()
	opts.CertValidity = opts.PropagationDelay
	f := newFakes(t, DefaultAPIServices)
	if _, err := New(opts, f.kube, f.agg); err == nil || !strings.Contains(err.Error(), "9 x the propagation delay") {
		t.Errorf("New with a too short validity = %v, want the Validate error", err)
	}
}

// An APIService that loses its bundle (re-created or replaced by hand)
// gets it back from the controller's watch, long before the resync.
func TestControllerRestoresAWipedBundle(t *testing.T) {
	f := newFakes(t, DefaultAPIServices)
	c := mustStart(t, newController(t, f, controllerOptions()))
	waitFor(t, 10*time.Second, "first convergence", func() (bool, string) { return converged(t, f, DefaultAPIServices, c) })
	name := DefaultAPIServices[1]
	as := f.apiService(t, name)
	as.Spec.CABundle, as.Spec.InsecureSkipTLSVerify = nil, true
	if _, err := f.agg.ApiregistrationV1().APIServices().Update(context.Background(), as, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// resync is minutes; the watch answers in moments.
	waitFor(t, 5*time.Second, "the bundle back on "+name, func() (bool, string) {
		got := f.apiService(t, name)
		return len(got.Spec.CABundle) > 0 && !got.Spec.InsecureSkipTLSVerify,
			fmt.Sprintf("caBundle %d bytes, insecureSkipTLSVerify %v", len(got.Spec.CABundle), got.Spec.InsecureSkipTLSVerify)
	})
}
