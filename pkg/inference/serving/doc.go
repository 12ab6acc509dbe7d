// Package serving holds what gpufleet's HTTP servers on the request path
// (the inference server and the model router) do alike: serve until told
// to stop, then drain (serve.go), and read request bodies into reused
// buffers (body.go).
package serving
