// Package router is gpufleet's model router: one Open Inference Protocol
// v2 endpoint in front of many model Deployments.
//
// # What it decides
//
// For each request it decides, in this order:
//
//  1. Which route serves it: the first route of the rules whose match holds
//     (model name and version from the path, headers, top-level request
//     parameters such as propertyType). No route: 404, saying so.
//  2. Whether it may pass: the global token bucket, then the route's;
//     refused requests get 429 with Retry-After.
//  3. Which backend: the route's weighted split (percent, summing to 100),
//     drawn per request; an Argo Rollout may set the weights (rollout.go).
//     A backend may pin a model version (version routes).
//  4. Which pod: among the backend's ready endpoints (EndpointSlices, pods
//     or fixed addresses; an endpoint that turns not ready or terminating
//     gets no new request from the moment the router sees it), either power
//     of two choices by least cost (outstanding requests from this router
//     plus the pod's scraped inference_queue_depth, plus one, times the
//     pod's decaying peak response time) or round robin.
//  5. Whether to try another pod: only when the pod surely did not run it:
//     it answered 429 or 503 (the inference server refuses with these
//     before queueing) or no byte was sent (connection refused). Never
//     after a timeout, a connection lost after sending, or another status.
//     At most MaxAttempts pods, within a retry budget (a share of requests).
//
// # Why
//
// kube-proxy picks a pod at random per connection, blind to a replica whose
// GPU is busier and whose queue is deeper; with keep-alive connections a
// client even sticks to one pod. Power of two choices over fresh load
// figures avoids the deep queue at the cost of two atomic loads per request
// (Mitzenmacher; Envoy's least-request balancer); the queue depth scraped
// every 100 ms (the Gateway API inference extension scrapes every 50 ms)
// adds the load other routers and clients put on the pod, and the response
// time tells a slow idle pod from a fast idle one (load alone ties them).
package router
