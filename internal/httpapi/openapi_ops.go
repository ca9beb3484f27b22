package httpapi

import "net/http"

// operations is the documented API. Keep it beside the router: the OpenAPI
// test fails when a route is missing here or listed here without a route.
func operations() []operation {
	return []operation{
		{Method: http.MethodGet, Path: "/api/v1/openapi.json", Summary: "This OpenAPI document", Tag: "meta", Public: true, Response: map[string]any{}},
	}
}
