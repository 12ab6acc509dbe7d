package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/component-base/metrics/legacyregistry"
	aggregator "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"

	"github.com/gpufleet/gpufleet/pkg/adapter/servingcert"
)

// validateServingCert checks --serving-cert-secret and its settings, or the
// certificate files the adapter would otherwise serve.
func (o *Options) validateServingCert() []error {
	var certFile, keyFile string
	// Options built without AddFlags have no server options.
	if o.CustomMetricsAdapterServerOptions != nil && o.SecureServing != nil {
		certFile, keyFile = o.SecureServing.ServerCert.CertKey.CertFile, o.SecureServing.ServerCert.CertKey.KeyFile
	}
	if o.ServingCertSecret == "" {
		if certFile == "" && keyFile == "" {
			return nil
		}
		if err := checkCertFiles(certFile, keyFile, time.Now()); err != nil {
			return []error{err}
		}
		return nil
	}
	var errs []error
	if certFile != "" || keyFile != "" {
		errs = append(errs, errors.New("--serving-cert-secret and --tls-cert-file/--tls-private-key-file both choose the serving certificate: keep one"))
	}
	ns, name, err := servingcert.ParseSecretRef(o.ServingCertSecret)
	if err != nil {
		return append(errs, fmt.Errorf("--serving-cert-secret=%w", err))
	}
	o.ServingCert.Namespace, o.ServingCert.SecretName = ns, name
	if err := o.ServingCert.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("--serving-cert-secret: %w", err))
	}
	return errs
}

// checkCertFiles says what is wrong with a serving certificate and key
// given as files: missing, unreadable, not matching, or expired.
func checkCertFiles(certFile, keyFile string, now time.Time) error {
	if certFile == "" || keyFile == "" {
		return errors.New("--tls-cert-file and --tls-private-key-file go together")
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("serving certificate: %w (mount the Secret that holds it, or use --serving-cert-secret to have the adapter keep one)", err)
		}
		return fmt.Errorf("serving certificate %s with key %s: %w (pass the key of that certificate, or use --serving-cert-secret to have the adapter keep a pair)", certFile, keyFile, err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return fmt.Errorf("serving certificate %s: %w", certFile, err)
	}
	if now.After(leaf.NotAfter) {
		return fmt.Errorf("serving certificate %s expired at %s: renew it, or use --serving-cert-secret to have the adapter keep and rotate one", certFile, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Before(leaf.NotBefore) {
		return fmt.Errorf("serving certificate %s is valid only from %s: check the clock", certFile, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	return nil
}

// startServingCert runs the serving-certificate controller, if asked, and
// has the API server serve its certificate. Call it after the providers
// are set (Config fixes the OpenAPI definitions) and before o.Server().
func (o *Options) startServingCert(ctx context.Context, restConfig *rest.Config, client kubernetes.Interface) error {
	if o.ServingCertSecret == "" {
		return nil
	}
	agg, err := aggregator.NewForConfig(restConfig)
	if err != nil {
		return fmt.Errorf("building the APIService client: %w", err)
	}
	ctrl, err := servingcert.New(o.ServingCert, client, agg)
	if err != nil {
		return err
	}
	for _, c := range ctrl.Collectors() {
		legacyregistry.RawMustRegister(c)
	}
	if err := ctrl.Start(ctx, time.Minute); err != nil {
		return err
	}
	cfg, err := o.Config()
	if err != nil {
		return fmt.Errorf("configuring the API server: %w", err)
	}
	cfg.GenericConfig.SecureServing.Cert = ctrl
	return nil
}
