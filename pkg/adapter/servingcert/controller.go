package servingcert

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
	aggregator "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"
	aggregatorinformers "k8s.io/kube-aggregator/pkg/client/informers/externalversions"
)

// resync bounds how long the controller goes without checking the Secret
// and the APIServices even if no watch says anything changed.
const resync = 5 * time.Minute

// Controller keeps the Secret, injects its CA bundle and serves its
// certificate (it is the adapter's dynamiccertificates.CertKeyContentProvider).
type Controller struct {
	opts    Options
	client  kubernetes.Interface
	agg     aggregator.Interface
	now     func() time.Time
	secrets corev1listers.SecretLister
	synced  cache.InformerSynced
	factory informers.SharedInformerFactory
	// apiFactories watch the APIServices, one each: an APIService that
	// loses its bundle (re-created, replaced) gets it back at once.
	apiFactories []aggregatorinformers.SharedInformerFactory
	kick         chan struct{}

	mu         sync.Mutex
	certPEM    []byte
	keyPEM     []byte
	servedCert *x509.Certificate
	listeners  []listener
	served     chan struct{} // closed once a certificate is served

	rotations *prometheus.CounterVec
	notAfter  *prometheus.GaugeVec
}

// listener is dynamiccertificates.Listener.
type listener interface{ Enqueue() }

// New returns a controller for opts (validated here).
func New(opts Options, client kubernetes.Interface, agg aggregator.Interface) (*Controller, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("serving certificate: %w", err)
	}
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithNamespace(opts.Namespace),
		informers.WithTweakListOptions(func(lo *metav1.ListOptions) {
			lo.FieldSelector = fields.OneTermEqualSelector("metadata.name", opts.SecretName).String()
		}))
	inf := factory.Core().V1().Secrets()
	c := &Controller{
		opts: opts, client: client, agg: agg, now: time.Now,
		secrets: inf.Lister(), factory: factory,
		kick:   make(chan struct{}, 1),
		served: make(chan struct{}),
		rotations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gpufleet_adapter_serving_cert_writes_total",
			Help: "Writes of the serving-certificate Secret by this replica, by reason (create, ca, cert, bundle, injected, repair).",
		}, []string{"reason"}),
		notAfter: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gpufleet_adapter_serving_cert_not_after_seconds",
			Help: "Expiry (Unix time) of the certificate this replica serves and of the CA that signs it.",
		}, []string{"certificate"}),
	}
	reg, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.poke() },
		UpdateFunc: func(any, any) { c.poke() },
		DeleteFunc: func(any) { c.poke() },
	})
	if err != nil {
		return nil, err
	}
	c.synced = reg.HasSynced
	for _, name := range opts.APIServices {
		f := aggregatorinformers.NewSharedInformerFactoryWithOptions(agg, 0,
			aggregatorinformers.WithTweakListOptions(func(lo *metav1.ListOptions) {
				lo.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
			}))
		if _, err := f.Apiregistration().V1().APIServices().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { c.poke() },
			UpdateFunc: func(any, any) { c.poke() },
			DeleteFunc: func(any) { c.poke() },
		}); err != nil {
			return nil, err
		}
		c.apiFactories = append(c.apiFactories, f)
	}
	return c, nil
}

// Collectors are the controller's metrics.
func (c *Controller) Collectors() []prometheus.Collector {
	return []prometheus.Collector{c.rotations, c.notAfter}
}

func (c *Controller) poke() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Start watches the Secret and keeps it until ctx ends; it returns once a
// certificate is served, or with an error naming the Secret if none is
// within timeout.
func (c *Controller) Start(ctx context.Context, timeout time.Duration) error {
	c.factory.Start(ctx.Done())
	for _, f := range c.apiFactories {
		f.Start(ctx.Done())
	}
	go c.run(ctx)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-c.served:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("no serving certificate in Secret %s/%s after %v: check the adapter's log, and that its ServiceAccount may get, list, watch, create and update that Secret", c.opts.Namespace, c.opts.SecretName, timeout)
	}
}

func (c *Controller) run(ctx context.Context) {
	logger := klog.FromContext(ctx).WithValues("secret", klog.KRef(c.opts.Namespace, c.opts.SecretName))
	if !cache.WaitForCacheSync(ctx.Done(), c.synced) {
		return
	}
	backoff := time.Second
	for {
		next, err := c.reconcile(klog.NewContext(ctx, logger))
		wait := next.Sub(c.now())
		if err != nil {
			logger.Error(err, "Keeping the serving certificate", "retryIn", backoff)
			wait, backoff = backoff, min(2*backoff, 30*time.Second)
		} else {
			backoff = time.Second
		}
		wait = max(min(wait, resync), 50*time.Millisecond)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-c.kick:
		case <-t.C:
		}
		t.Stop()
	}
}

// reconcile serves the Secret's certificate, injects its bundle, and makes
// at most one write of it. It returns when to look again.
func (c *Controller) reconcile(ctx context.Context) (time.Time, error) {
	logger := klog.FromContext(ctx)
	now := c.now()
	sec, err := c.secrets.Secrets(c.opts.Namespace).Get(c.opts.SecretName)
	switch {
	case apierrors.IsNotFound(err):
		sec = nil
	case err != nil:
		return time.Time{}, err
	default:
		c.serve(sec)
	}
	injected := false
	var injectErr error
	if sec != nil {
		injected, injectErr = c.inject(ctx, sec.Data[KeyCABundle])
	}
	u, next, err := c.opts.decide(sec, injected, now)
	if err != nil {
		return time.Time{}, errors.Join(err, injectErr)
	}
	if u == nil {
		return next, injectErr
	}
	written, err := c.write(ctx, sec, u)
	if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) || (sec != nil && apierrors.IsNotFound(err)) {
		// Another replica (or an admin deleting the Secret) changed it
		// first; the watch brings the change, and the next look acts on it.
		logger.V(2).Info("Secret changed meanwhile; looking again", "reason", u.reason)
		return now.Add(time.Second), nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("writing Secret %s/%s (%s): %w", c.opts.Namespace, c.opts.SecretName, u.reason, err)
	}
	c.serve(written)
	if u.warning {
		logger.Info("WARNING: repaired the serving-certificate Secret", "reason", u.reason)
	} else {
		logger.Info("Updated the serving-certificate Secret", "reason", u.reason)
	}
	return now, injectErr
}

func (c *Controller) write(ctx context.Context, sec *corev1.Secret, u *update) (*corev1.Secret, error) {
	kind := "create"
	switch {
	case sec == nil:
	case u.warning:
		kind = "repair"
	case !bytes.Equal(sec.Data[KeyCAKey], u.data[KeyCAKey]):
		kind = "ca"
	case !bytes.Equal(sec.Data[KeyCert], u.data[KeyCert]):
		kind = "cert"
	case !bytes.Equal(sec.Data[KeyCABundle], u.data[KeyCABundle]):
		kind = "bundle"
	default:
		kind = "injected"
	}
	secrets := c.client.CoreV1().Secrets(c.opts.Namespace)
	var out *corev1.Secret
	var err error
	if sec == nil {
		out, err = secrets.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{
				Name: c.opts.SecretName, Namespace: c.opts.Namespace, Annotations: u.annotations,
				Labels: map[string]string{"app.kubernetes.io/name": "metrics-adapter"},
			},
			Type: corev1.SecretTypeTLS,
			Data: u.data,
		}, metav1.CreateOptions{})
	} else {
		upd := sec.DeepCopy()
		upd.Data, upd.Annotations = u.data, u.annotations
		out, err = secrets.Update(ctx, upd, metav1.UpdateOptions{})
		if apierrors.IsInvalid(err) && sec.Immutable != nil && *sec.Immutable {
			err = fmt.Errorf("%w (the Secret is immutable: delete it and the adapter makes a new one)", err)
		}
	}
	if err == nil {
		c.rotations.WithLabelValues(kind).Inc()
	}
	return out, err
}

// inject sets the CA bundle on every APIService that lacks it; it says
// whether all of them carry it.
func (c *Controller) inject(ctx context.Context, bundle []byte) (bool, error) {
	if len(bundle) == 0 {
		return false, nil
	}
	logger := klog.FromContext(ctx)
	apis := c.agg.ApiregistrationV1().APIServices()
	var errs []error
	for _, name := range c.opts.APIServices {
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			as, err := apis.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if bytes.Equal(as.Spec.CABundle, bundle) && !as.Spec.InsecureSkipTLSVerify {
				return nil
			}
			as.Spec.CABundle, as.Spec.InsecureSkipTLSVerify = bundle, false
			if _, err := apis.Update(ctx, as, metav1.UpdateOptions{}); err != nil {
				return err
			}
			logger.Info("Injected the CA bundle", "apiService", name, "bundle", fingerprint(bundle))
			return nil
		})
		if apierrors.IsNotFound(err) {
			err = fmt.Errorf("APIService %s not found: apply manifests/base/metrics-adapter/apiservice.yaml, or leave it out of --ca-bundle-apiservices", name)
		} else if err != nil {
			err = fmt.Errorf("injecting the CA bundle into APIService %s: %w", name, err)
		}
		errs = append(errs, err)
	}
	err := errors.Join(errs...)
	return err == nil, err
}

// serve switches to the Secret's certificate if it is usable and new: not
// issued before the one served (the watch can deliver an older version of
// the Secret after the controller's own write).
func (c *Controller) serve(sec *corev1.Secret) {
	cont := read(sec.Data, sec.Annotations, c.opts.dnsNames()[0], c.now())
	if cont.cert == nil {
		return
	}
	c.mu.Lock()
	if bytes.Equal(c.certPEM, cont.cert.certPEM) && bytes.Equal(c.keyPEM, cont.cert.keyPEM) ||
		c.servedCert != nil && cont.cert.cert.NotBefore.Before(c.servedCert.NotBefore) {
		c.mu.Unlock()
		return
	}
	c.servedCert = cont.cert.cert
	first := c.certPEM == nil
	c.certPEM, c.keyPEM = cont.cert.certPEM, cont.cert.keyPEM
	ls := append([]listener(nil), c.listeners...)
	c.mu.Unlock()
	c.notAfter.WithLabelValues("serving").Set(float64(cont.cert.cert.NotAfter.Unix()))
	if len(cont.bundle) > 0 {
		c.notAfter.WithLabelValues("ca").Set(float64(cont.bundle[0].NotAfter.Unix()))
	}
	if first {
		close(c.served)
	}
	for _, l := range ls {
		l.Enqueue()
	}
}
