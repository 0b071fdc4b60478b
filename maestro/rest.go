package maestro

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// REST paths of Maestro's API (openapi/openapi.yaml of openshift-online/maestro).
const (
	APIBasePath         = "/api/maestro/v1"
	ConsumersPath       = APIBasePath + "/consumers"
	ResourceBundlesPath = APIBasePath + "/resource-bundles"
	// ErrorsPath is where an Error object's href points: ErrorsPath/<code>.
	ErrorsPath = APIBasePath + "/errors"
)

// ErrNotFound means the REST API answered 404: no such object.
var ErrNotFound = errors.New("maestro: not found")

// maxResponseBytes bounds what the client reads from one response, so a
// misbehaving server cannot exhaust memory.
const maxResponseBytes = 256 << 20

// listPageSize is the page size ListConsumers asks for.
const listPageSize = 500

// Consumer is a Maestro consumer: a cluster that resources are sent to.
type Consumer struct {
	ID        string            `json:"id,omitempty"`
	Kind      string            `json:"kind,omitempty"`
	Href      string            `json:"href,omitempty"`
	Name      string            `json:"name"`
	Labels    map[string]string `json:"labels,omitempty"`
	CreatedAt *time.Time        `json:"created_at,omitempty"`
	UpdatedAt *time.Time        `json:"updated_at,omitempty"`
}

// List is one page of a list endpoint: page counts from 1, size is the
// number of items on this page and total the number in all pages.
type List[T any] struct {
	Kind  string `json:"kind"`
	Page  int    `json:"page"`
	Size  int    `json:"size"`
	Total int    `json:"total"`
	Items []T    `json:"items"`
}

// ConsumerList is one page of consumers.
type ConsumerList = List[Consumer]

// ResourceBundle is Maestro's view of one resource (one ManifestWork). The
// id is the resource id of the spec events; status is the stored status
// event, kept raw.
type ResourceBundle struct {
	ID              string            `json:"id"`
	Kind            string            `json:"kind,omitempty"`
	Href            string            `json:"href,omitempty"`
	Name            string            `json:"name"`
	ConsumerName    string            `json:"consumer_name"`
	Version         int64             `json:"version"`
	CreatedAt       *time.Time        `json:"created_at,omitempty"`
	UpdatedAt       *time.Time        `json:"updated_at,omitempty"`
	DeletedAt       *time.Time        `json:"deleted_at,omitempty"`
	Metadata        json.RawMessage   `json:"metadata,omitempty"`
	Manifests       []json.RawMessage `json:"manifests,omitempty"`
	DeleteOption    json.RawMessage   `json:"delete_option,omitempty"`
	ManifestConfigs []json.RawMessage `json:"manifest_configs,omitempty"`
	Status          json.RawMessage   `json:"status,omitempty"`
}

// ResourceBundleList is one page of resource bundles.
type ResourceBundleList = List[ResourceBundle]

// ErrorObject is the body of an error answer (openapi Error): code is
// "maestro-<n>" and href ErrorsPath/<n>.
type ErrorObject struct {
	ID          string `json:"id,omitempty"`
	Kind        string `json:"kind,omitempty"`
	Href        string `json:"href,omitempty"`
	Code        string `json:"code"`
	Reason      string `json:"reason"`
	OperationID string `json:"operation_id,omitempty"`
}

// APIError is an error answer of the REST API: the HTTP status plus
// Maestro's Error object when the body holds one.
type APIError struct {
	Method, URL string
	StatusCode  int
	ErrorObject
	// Body is the start of a body that is not an Error object.
	Body string `json:"-"`
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("maestro: %s %s: HTTP %d", e.Method, e.URL, e.StatusCode)
	switch {
	case e.Reason != "":
		msg += ": " + e.Reason
		if e.Code != "" {
			msg += " (" + e.Code + ")"
		}
	case e.Body != "":
		msg += ": " + e.Body
	}
	return msg
}

// Is makes errors.Is(err, ErrNotFound) true for a 404 answer.
func (e *APIError) Is(target error) bool {
	return target == ErrNotFound && e.StatusCode == http.StatusNotFound
}

// RESTClient talks to Maestro's REST API (:8000): consumers and resource
// bundles. Safe for concurrent use.
type RESTClient struct {
	base  *url.URL
	http  *http.Client
	token string
}

// NewRESTClient returns a client of the REST API at baseURL (e.g.
// http://127.0.0.1:8000). httpClient nil means a client with a 30s timeout.
// token, when set, is sent as a bearer token; it is never logged or put in
// errors, and it is refused over http to anything but a loopback address,
// where it would cross the network in clear text (the gRPC side likewise
// sends a token only over TLS).
func NewRESTClient(baseURL string, httpClient *http.Client, token string) (*RESTClient, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("maestro: REST URL %q: %w", baseURL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("maestro: REST URL %q: want http://host:port or https://host:port", baseURL)
	}
	if token != "" && u.Scheme == "http" && !loopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("maestro: REST URL %s: the bearer token would travel in clear text over http: use https://", u.Redacted())
	}
	u.Path = strings.TrimRight(u.Path, "/")
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 30 * time.Second}
	}
	return &RESTClient{base: u, http: httpClient, token: token}, nil
}

// loopbackHost reports whether host names this machine only.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// CreateConsumer creates consumer name. created is false, with no error,
// when it already exists (409), so the call is idempotent.
func (c *RESTClient) CreateConsumer(ctx context.Context, name string) (created bool, err error) {
	body, err := json.Marshal(Consumer{Name: name})
	if err != nil {
		return false, fmt.Errorf("maestro: create consumer %q: %w", name, err)
	}
	status, err := c.do(ctx, http.MethodPost, ConsumersPath, nil, body, nil, http.StatusCreated, http.StatusConflict)
	if err != nil {
		return false, fmt.Errorf("create consumer %q: %w", name, err)
	}
	return status == http.StatusCreated, nil
}

// ListConsumers returns every consumer, reading all pages.
func (c *RESTClient) ListConsumers(ctx context.Context) ([]Consumer, error) {
	var all []Consumer
	for page := 1; ; page++ {
		var list ConsumerList
		if err := c.list(ctx, ConsumersPath, page, listPageSize, &list); err != nil {
			return nil, fmt.Errorf("list consumers: %w", err)
		}
		all = append(all, list.Items...)
		if len(list.Items) == 0 || len(all) >= list.Total {
			return all, nil
		}
	}
}

// GetResourceBundle returns the resource bundle with resource id id; an
// error matching ErrNotFound when there is none.
func (c *RESTClient) GetResourceBundle(ctx context.Context, id string) (*ResourceBundle, error) {
	var rb ResourceBundle
	if _, err := c.do(ctx, http.MethodGet, ResourceBundlesPath+"/"+url.PathEscape(id), nil, nil, &rb, http.StatusOK); err != nil {
		return nil, fmt.Errorf("get resource bundle %s: %w", id, err)
	}
	return &rb, nil
}

// ListResourceBundles returns one page (1-based) of resource bundles.
func (c *RESTClient) ListResourceBundles(ctx context.Context, page, size int) (*ResourceBundleList, error) {
	var list ResourceBundleList
	if err := c.list(ctx, ResourceBundlesPath, page, size, &list); err != nil {
		return nil, fmt.Errorf("list resource bundles: %w", err)
	}
	return &list, nil
}

func (c *RESTClient) list(ctx context.Context, path string, page, size int, out any) error {
	if page < 1 || size < 0 {
		return fmt.Errorf("maestro: page %d size %d: page must be >= 1 and size >= 0", page, size)
	}
	q := url.Values{"page": {strconv.Itoa(page)}, "size": {strconv.Itoa(size)}}
	_, err := c.do(ctx, http.MethodGet, path, q, nil, out, http.StatusOK)
	return err
}

// do sends one request and decodes a JSON answer into out. Statuses not in
// ok become an *APIError.
func (c *RESTClient) do(ctx context.Context, method, path string, query url.Values, body []byte, out any, ok ...int) (int, error) {
	u := *c.base
	u.Path += path
	u.RawQuery = query.Encode()
	target := u.String()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return 0, fmt.Errorf("maestro: %s %s: %w", method, target, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("maestro: %s %s: %w", method, target, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("maestro: %s %s: read response: %w", method, target, err)
	}
	for _, code := range ok {
		if resp.StatusCode != code {
			continue
		}
		if out != nil && code < 300 {
			if err := json.Unmarshal(data, out); err != nil {
				return code, fmt.Errorf("maestro: %s %s: HTTP %d: decode response: %w", method, target, code, err)
			}
		}
		return code, nil
	}
	apiErr := &APIError{Method: method, URL: target, StatusCode: resp.StatusCode}
	if json.Unmarshal(data, apiErr) != nil || apiErr.Reason == "" {
		apiErr.Body = snippet(data)
	}
	return resp.StatusCode, apiErr
}

// snippet is the start of a response body, for error messages.
func snippet(b []byte) string {
	const max = 200
	s := strings.TrimSpace(string(b))
	if len(s) > max {
		s = s[:max] + "..."
	}
	return s
}
