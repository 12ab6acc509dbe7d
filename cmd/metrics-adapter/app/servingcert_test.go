package app

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var certNow = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)

// writeCert writes a self-signed serving certificate valid from notBefore
// to notAfter and its key into dir, returning their paths.
func writeCert(t *testing.T, dir, name string, notBefore, notAfter time.Time) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "gpufleet-metrics-adapter.gpufleet-system.svc"},
		DNSNames:     []string{"gpufleet-metrics-adapter.gpufleet-system.svc"},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestCheckCertFiles(t *testing.T) {
	dir := t.TempDir()
	validCrt, validKey := writeCert(t, dir, "valid", certNow.Add(-time.Hour), certNow.Add(90*24*time.Hour))
	expiredCrt, expiredKey := writeCert(t, dir, "expired", certNow.Add(-48*time.Hour), certNow.Add(-time.Hour))
	futureCrt, futureKey := writeCert(t, dir, "future", certNow.Add(time.Hour), certNow.Add(48*time.Hour))
	_, otherKey := writeCert(t, dir, "other", certNow.Add(-time.Hour), certNow.Add(time.Hour))
	missing := filepath.Join(dir, "missing.crt")
	garbage := filepath.Join(dir, "garbage.crt")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name              string
		certFile, keyFile string
		// want: substrings of the error (none: valid). Each error names
		// the file at fault and says what to do.
		want []string
	}{
		{name: "valid pair", certFile: validCrt, keyFile: validKey},
		{name: "missing certificate file", certFile: missing, keyFile: validKey,
			want: []string{missing, "no such file", "mount the Secret", "--serving-cert-secret"}},
		{name: "missing key file", certFile: validCrt, keyFile: filepath.Join(dir, "missing.key"),
			want: []string{filepath.Join(dir, "missing.key"), "mount the Secret", "--serving-cert-secret"}},
		{name: "expired certificate", certFile: expiredCrt, keyFile: expiredKey,
			want: []string{expiredCrt, "expired at " + certNow.Add(-time.Hour).Format(time.RFC3339), "renew it", "--serving-cert-secret"}},
		{name: "key not matching", certFile: validCrt, keyFile: otherKey,
			want: []string{validCrt, otherKey, "does not match", "--serving-cert-secret"}},
		{name: "not valid yet", certFile: futureCrt, keyFile: futureKey,
			want: []string{futureCrt, "valid only from " + certNow.Add(time.Hour).Format(time.RFC3339), "check the clock"}},
		{name: "certificate file that is no certificate", certFile: garbage, keyFile: validKey,
			want: []string{garbage}},
		{name: "certificate without key", certFile: validCrt,
			want: []string{"--tls-cert-file and --tls-private-key-file go together"}},
		{name: "key without certificate", keyFile: validKey,
			want: []string{"--tls-cert-file and --tls-private-key-file go together"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkCertFiles(tc.certFile, tc.keyFile, certNow)
			if len(tc.want) == 0 {
				if err != nil {
					t.Errorf("checkCertFiles = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("checkCertFiles = nil, want an error with %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("checkCertFiles = %q\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

func TestValidateServingCertFlags(t *testing.T) {
	dir := t.TempDir()
	crt, key := writeCert(t, dir, "valid", time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	expiredCrt, expiredKey := writeCert(t, dir, "expired", time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour))
	for _, tc := range []struct {
		name string
		args []string
		want []string // substrings of the error; none: valid
	}{
		{name: "managed certificate", args: []string{"--serving-cert-secret=gpufleet-system/gpufleet-metrics-adapter-serving-cert"}},
		{name: "certificate files", args: []string{"--tls-cert-file=" + crt, "--tls-private-key-file=" + key}},
		{name: "managed certificate and files", args: []string{"--serving-cert-secret=gpufleet-system/cert", "--tls-cert-file=" + crt, "--tls-private-key-file=" + key},
			want: []string{"--serving-cert-secret and --tls-cert-file", "keep one"}},
		{name: "managed certificate and a missing file", args: []string{"--serving-cert-secret=gpufleet-system/cert", "--tls-cert-file=/nonexistent/tls.crt", "--tls-private-key-file=/nonexistent/tls.key"},
			want: []string{"--serving-cert-secret and --tls-cert-file", "keep one"}},
		{name: "no namespace", args: []string{"--serving-cert-secret=cert"},
			want: []string{`--serving-cert-secret="cert"`, "NAMESPACE/NAME"}},
		{name: "bad namespace", args: []string{"--serving-cert-secret=Gpufleet_System/cert"},
			want: []string{`--serving-cert-secret="Gpufleet_System/cert"`, "NAMESPACE/NAME"}},
		{name: "empty name", args: []string{"--serving-cert-secret=gpufleet-system/"},
			want: []string{`--serving-cert-secret="gpufleet-system/"`}},
		{name: "validity too short for the propagation delay", args: []string{"--serving-cert-secret=gpufleet-system/cert", "--serving-cert-validity=1m", "--ca-propagation-delay=30s"},
			want: []string{"--serving-cert-secret: ", "serving certificate validity 1m0s", "9 x the propagation delay"}},
		{name: "CA shorter than the certificate", args: []string{"--serving-cert-secret=gpufleet-system/cert", "--ca-validity=24h", "--serving-cert-validity=48h"},
			want: []string{"--serving-cert-secret: ", "CA validity 24h0m0s"}},
		{name: "bad service", args: []string{"--serving-cert-secret=gpufleet-system/cert", "--serving-cert-service=Metrics_Adapter"},
			want: []string{`service name "Metrics_Adapter"`}},
		{name: "service settings ignored without the managed certificate", args: []string{"--serving-cert-validity=1m", "--serving-cert-service=Metrics_Adapter"}},
		{name: "expired certificate file", args: []string{"--tls-cert-file=" + expiredCrt, "--tls-private-key-file=" + expiredKey},
			want: []string{expiredCrt, "expired at", "renew it"}},
		{name: "missing certificate file", args: []string{"--tls-cert-file=" + filepath.Join(dir, "missing.crt"), "--tls-private-key-file=" + key},
			want: []string{filepath.Join(dir, "missing.crt"), "--serving-cert-secret"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := parseOptions(t, tc.args...)
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
					t.Errorf("Validate() = %q\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

// A valid --serving-cert-secret sets the controller's Secret.
func TestValidateSetsServingCertSecret(t *testing.T) {
	o := parseOptions(t, "--serving-cert-secret=gpufleet-system/serving", "--serving-cert-service=adapter", "--ca-bundle-apiservices=v1beta1.custom.metrics.k8s.io")
	if err := o.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	sc := o.ServingCert
	if sc.Namespace != "gpufleet-system" || sc.SecretName != "serving" || sc.ServiceName != "adapter" {
		t.Errorf("ServingCert = %s/%s for Service %s, want gpufleet-system/serving for adapter", sc.Namespace, sc.SecretName, sc.ServiceName)
	}
	if len(sc.APIServices) != 1 || sc.APIServices[0] != "v1beta1.custom.metrics.k8s.io" {
		t.Errorf("APIServices = %v", sc.APIServices)
	}
}
