// Package servingcert keeps the metrics adapter's serving certificate and
// the CA that signs it in a Secret, injects the CA bundle into the
// adapter's APIServices so kube-apiserver verifies the adapter, and rotates
// both before they expire without a moment where kube-apiserver cannot
// verify the certificate an adapter serves.
//
// The Secret (type kubernetes.io/tls) holds:
//
//	tls.crt, tls.key  the serving certificate and its key;
//	ca.crt            the CA bundle: the signing CA first, then older CAs
//	                  still trusted while a rotation completes;
//	ca.key            the signing CA's key.
//
// Every adapter replica runs a Controller on the same Secret: writes are
// guarded by the Secret's resourceVersion, so replicas never undo each
// other's rotation, and each replica serves the certificate in the Secret
// as soon as its watch sees it (no restart, no volume sync delay).
//
// A rotation goes in steps that never break verification:
//
//  1. A new CA joins the bundle (the old one stays) and the bundle is
//     injected into every APIService.
//  2. Once every APIService has carried the new bundle for the propagation
//     delay, the serving certificate is reissued by the new CA. Handshakes
//     from then on verify against the new CA; both are trusted.
//  3. After another propagation delay, CAs that no longer sign the serving
//     certificate leave the bundle.
//
// A serving certificate that only needs renewing (same CA) is reissued at
// once: the bundle already trusts its CA. A CA is rotated when a third of
// its lifetime is left, a serving certificate likewise, and an admin forces
// a rotation by setting the annotation gpufleet.io/rotate on the Secret to
// a new value.
//
// Certificates are made with the Go standard library's crypto/x509 (ECDSA
// P-256) and read and written with client-go's cert and keyutil helpers; the
// adapter serves them through k8s.io/apiserver's dynamic certificate
// support.
package servingcert
