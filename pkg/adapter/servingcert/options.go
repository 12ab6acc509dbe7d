package servingcert

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Options say which Secret holds the certificates, what they are for and
// how long they last.
type Options struct {
	// Namespace and SecretName locate the Secret; ServiceName is the
	// Service in Namespace that kube-apiserver reaches the adapter
	// through (the certificate's DNS names).
	Namespace, SecretName, ServiceName string
	// APIServices get the CA bundle.
	APIServices []string
	// CAValidity and CertValidity are the lifetimes of new CAs and serving
	// certificates; each is renewed with a third of it left.
	CAValidity, CertValidity time.Duration
	// PropagationDelay is how long a new CA bundle is given to reach every
	// kube-apiserver, and a new serving certificate every replica, before
	// the next step relies on it.
	PropagationDelay time.Duration
}

// Defaults.
const (
	DefaultCAValidity       = 5 * 365 * 24 * time.Hour
	DefaultCertValidity     = 90 * 24 * time.Hour
	DefaultPropagationDelay = 30 * time.Second
)

// DefaultAPIServices are the APIServices of the metrics adapter.
var DefaultAPIServices = []string{
	"v1beta1.custom.metrics.k8s.io",
	"v1beta2.custom.metrics.k8s.io",
	"v1beta1.external.metrics.k8s.io",
}

// ParseSecretRef parses NAMESPACE/NAME.
func ParseSecretRef(s string) (namespace, name string, err error) {
	namespace, name, ok := strings.Cut(s, "/")
	if !ok || len(validation.IsDNS1123Label(namespace)) > 0 || len(validation.IsDNS1123Subdomain(name)) > 0 {
		return "", "", fmt.Errorf("%q: want NAMESPACE/NAME of a Secret, e.g. gpufleet-system/gpufleet-metrics-adapter-serving-cert", s)
	}
	return namespace, name, nil
}

// Validate returns every invalid option.
func (o *Options) Validate() error {
	var errs []error
	if o.Namespace == "" || o.SecretName == "" {
		errs = append(errs, errors.New("the Secret's namespace and name are required"))
	}
	if msgs := validation.IsDNS1035Label(o.ServiceName); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("service name %q: %s", o.ServiceName, strings.Join(msgs, "; ")))
	}
	if o.PropagationDelay <= 0 {
		errs = append(errs, fmt.Errorf("propagation delay %v: must be positive", o.PropagationDelay))
	}
	// A rotation takes two propagation delays and starts with a third of
	// the lifetime left.
	if min := 9 * o.PropagationDelay; o.CertValidity < min {
		errs = append(errs, fmt.Errorf("serving certificate validity %v: must be at least 9 x the propagation delay (%v)", o.CertValidity, min))
	}
	if o.CAValidity < o.CertValidity {
		errs = append(errs, fmt.Errorf("CA validity %v: must be at least the serving certificate validity (%v)", o.CAValidity, o.CertValidity))
	}
	return errors.Join(errs...)
}

// dnsNames are the names kube-apiserver and clients in the cluster reach
// the Service by; kube-apiserver verifies <service>.<namespace>.svc.
func (o *Options) dnsNames() []string {
	svc := o.ServiceName + "." + o.Namespace
	return []string{svc + ".svc", svc + ".svc.cluster.local", svc, o.ServiceName}
}
