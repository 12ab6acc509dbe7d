package scrape

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"syscall"
	"time"
)

// The default scrape path for http:// targets keeps one idle connection per
// target and speaks just enough HTTP/1.1 to GET a body: a request line and
// three headers out, http.ReadResponse in. Compared with net/http's
// Transport it holds no goroutines and no buffers for idle connections (a
// Transport keeps a reader and a writer goroutine and two 4 KiB buffers per
// idle connection, about 25 KiB per target, or it dials for every scrape
// when its idle pool is smaller than the target set).

// readers are the response readers, shared between scrapes.
var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}

// getRequest tells http.ReadResponse the response answers a GET.
var getRequest = &http.Request{Method: http.MethodGet}

// longAgo is a deadline in the past: it interrupts blocked I/O.
var longAgo = time.Unix(1, 0)

var dialer = &net.Dialer{KeepAlive: -1}

// closeConn closes the target's idle connection; the caller holds ts.busy.
func (ts *targetState) closeConn() {
	if ts.conn != nil {
		_ = ts.conn.Close()
		ts.conn = nil
	}
}

// fetchKeptConn GETs ts.url over the target's kept connection, or a new
// one. A kept connection the server has closed meanwhile is retried once on
// a new connection. The caller holds ts.busy, which guards ts.conn.
func (s *Scraper) fetchKeptConn(ctx context.Context, ts *targetState) ([]byte, string, error) {
	if ts.request == "" {
		u, err := url.Parse(ts.url)
		if err != nil || u.Host == "" {
			return nil, "", fmt.Errorf("scraping %s: invalid URL", ts.url)
		}
		ts.host = u.Host
		if u.Port() == "" {
			ts.host = net.JoinHostPort(u.Hostname(), "80")
		}
		ts.request = "GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host +
			"\r\nUser-Agent: gpufleet-metrics-adapter\r\nAccept: " + acceptHeader + "\r\n\r\n"
	}
	host, request := ts.host, ts.request
	var err error
	for attempt := 0; ; attempt++ {
		c, reused := ts.conn, ts.conn != nil
		ts.conn = nil
		if c == nil {
			if c, err = dialer.DialContext(ctx, "tcp", host); err != nil {
				return nil, "", fmt.Errorf("scraping %s: %w", ts.url, err)
			}
		}
		body, contentType, keep, err := s.roundTrip(ctx, c, ts.url, request)
		if keep {
			ts.conn = c
		} else {
			_ = c.Close()
		}
		if err != nil && reused && attempt == 0 && ctx.Err() == nil && closedByPeer(err) {
			continue // the server closed the idle connection: once more on a new one
		}
		return body, contentType, err
	}
}

// roundTrip writes request on c and reads the response. keep says whether c
// may be reused.
func (s *Scraper) roundTrip(ctx context.Context, c net.Conn, target, request string) (body []byte, contentType string, keep bool, err error) {
	if d, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(longAgo) })
	defer stop()
	wrap := func(err error) error {
		// Report the timeout, not the I/O error it caused. The connection's
		// deadline is the context's, and may fire a moment before it.
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = ctxErr
		} else if errors.Is(err, os.ErrDeadlineExceeded) {
			err = context.DeadlineExceeded
		}
		return fmt.Errorf("scraping %s: %w", target, err)
	}
	if _, err := io.WriteString(c, request); err != nil {
		return nil, "", false, wrap(err)
	}
	br := readers.Get().(*bufio.Reader)
	br.Reset(c)
	defer func() {
		br.Reset(nil)
		readers.Put(br)
	}()
	resp, err := http.ReadResponse(br, getRequest)
	if err != nil {
		return nil, "", false, wrap(err)
	}
	body, err = s.readBody(target, resp)
	_ = resp.Body.Close()
	if err != nil {
		if ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded) {
			err = wrap(err)
		}
		return nil, "", false, err
	}
	keep = !resp.Close && br.Buffered() == 0
	if keep {
		_ = c.SetDeadline(time.Time{})
	}
	return body, resp.Header.Get("Content-Type"), keep, nil
}

// closedByPeer reports errors that mean the server closed a kept-alive
// connection before answering: the request may be sent again.
func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
