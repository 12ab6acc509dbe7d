package integration

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

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
		addr, err := testutil.FreeAddr()
		if err != nil {
			t.Fatal(err)
		}
		_, p, _ := net.SplitHostPort(addr)
		port, _ = strconv.Atoi(p)
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
