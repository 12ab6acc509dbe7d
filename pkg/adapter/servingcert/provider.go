package servingcert

import (
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
)

var _ dynamiccertificates.CertKeyContentProvider = &Controller{}

// Name names the certificate source in the API server's logs.
func (c *Controller) Name() string {
	return "secret/" + c.opts.Namespace + "/" + c.opts.SecretName
}

// CurrentCertKeyContent returns the PEM certificate and key being served.
func (c *Controller) CurrentCertKeyContent() ([]byte, []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.certPEM, c.keyPEM
}

// AddListener has l told whenever the served certificate changes.
func (c *Controller) AddListener(l dynamiccertificates.Listener) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.listeners = append(c.listeners, l)
}
