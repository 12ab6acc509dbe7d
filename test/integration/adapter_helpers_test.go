package integration

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"

	"github.com/gpufleet/gpufleet/internal/adaptertest"
	"github.com/gpufleet/gpufleet/internal/testutil"
	"github.com/gpufleet/gpufleet/pkg/localcluster"
)

// adapterArgsEnv makes this test binary a metrics-adapter process (see
// TestMain); its value is the adapter's arguments separated by \x1f.
const adapterArgsEnv = "GPUFLEET_TEST_ADAPTER_ARGS"

// adapterProc is a metrics-adapter child process of the test.
type adapterProc struct {
	*localcluster.Process
	port int
}

// startAdapter runs the metrics adapter as a child process serving on a
// free loopback port (or port, when non-zero) with the given extra flags,
// and waits until its /readyz answers ok. Its log is printed if the test
// fails; it is stopped when the test ends.
func startAdapter(t *testing.T, c *localcluster.Cluster, port int, flags ...string) *adapterProc {
	t.Helper()
	if port == 0 {
		port = freePort(t)
	}
	dir := t.TempDir()
	args := append(adaptertest.Flags(c, port, dir), flags...)
	logPath := filepath.Join(dir, "adapter.log")
	p, err := localcluster.StartProcess("metrics-adapter", os.Args[0], []string{"-test.run=^$"},
		[]string{adapterArgsEnv + "=" + strings.Join(args, "\x1f")}, logPath)
	if err != nil {
		t.Fatal(err)
	}
	a := &adapterProc{Process: p, port: port}
	t.Cleanup(func() {
		_ = p.Stop(10 * time.Second)
		if t.Failed() {
			t.Logf("metrics-adapter log (last 40 lines):\n%s", p.LogTail(40))
		}
	})
	insecure := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // loopback probe of a self-signed test server
	err = wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		if done, err := p.Exited(); done {
			t.Fatalf("metrics-adapter exited: %v\n%s", err, p.LogTail(40))
		}
		resp, err := insecure.Get("https://127.0.0.1:" + strconv.Itoa(port) + "/readyz")
		if err != nil {
			return false, nil
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		t.Fatalf("metrics-adapter not ready: %v\n%s", err, p.LogTail(40))
	}
	return a
}

// adapterHTTP is an admin client for the adapter's own port.
func adapterHTTP(t *testing.T, c *localcluster.Cluster, port int) (*http.Client, string) {
	t.Helper()
	cfg := rest.CopyConfig(c.Config)
	cfg.Host = "https://127.0.0.1:" + strconv.Itoa(port)
	cfg.Insecure, cfg.CAData, cfg.CAFile = true, nil, ""
	rt, err := rest.TransportFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Transport: rt, Timeout: 10 * time.Second}, cfg.Host
}

func getText(ctx context.Context, hc *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	return string(body), nil
}

func getJSON(ctx context.Context, hc *http.Client, url string, into any) error {
	body, err := getText(ctx, hc, url)
	if err != nil {
		return err
	}
	return json.Unmarshal([]byte(body), into)
}

// freePort is a free loopback port.
func freePort(t *testing.T) int {
	t.Helper()
	addr, err := testutil.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	_, p, _ := net.SplitHostPort(addr)
	port, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return port
}
