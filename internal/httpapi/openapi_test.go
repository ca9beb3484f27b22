package httpapi

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
)

// apiRoutes lists every method+pattern the router serves under /api/v1.
func apiRoutes(t *testing.T) map[string]bool {
	t.Helper()
	h := New(Config{}, Deps{Log: slog.New(slog.DiscardHandler)}).Handler()
	routes := map[string]bool{}
	err := chi.Walk(h.(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		route = strings.TrimSuffix(route, "/")
		if strings.HasPrefix(route, "/api/v1/") && !strings.HasSuffix(route, "/*") {
			routes[method+" "+route] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return routes
}

func TestEveryRouteIsInTheOpenAPIDocument(t *testing.T) {
	routes := apiRoutes(t)
	if len(routes) < 2 {
		t.Fatalf("walked only %d routes", len(routes))
	}
	rec := httptest.NewRecorder()
	New(Config{}, Deps{Log: slog.New(slog.DiscardHandler)}).Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/openapi.json", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /api/v1/openapi.json: %d", rec.Code)
	}
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi version %q", doc.OpenAPI)
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths {
		for method := range item {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	var missing, stale []string
	for r := range routes {
		if !documented[r] {
			missing = append(missing, r)
		}
	}
	for d := range documented {
		if !routes[d] {
			stale = append(stale, d)
		}
	}
	sort.Strings(missing)
	sort.Strings(stale)
	if len(missing) > 0 {
		t.Errorf("routes missing from the OpenAPI document (add them to operations()):\n  %s", strings.Join(missing, "\n  "))
	}
	if len(stale) > 0 {
		t.Errorf("documented operations with no route:\n  %s", strings.Join(stale, "\n  "))
	}
}

func TestOpenAPISchemasAreReferencedAndDefined(t *testing.T) {
	doc := buildOpenAPI(operations())
	b, _ := json.Marshal(doc)
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	for _, part := range strings.Split(string(b), `"$ref":"#/components/schemas/`)[1:] {
		name := part[:strings.Index(part, `"`)]
		if s, ok := schemas[name].(map[string]any); !ok || len(s) == 0 {
			t.Errorf("schema %s is referenced but not defined", name)
		}
	}
}

func TestOpenAPINullableFieldsAreRequiredAndAdmitNull(t *testing.T) {
	type sample struct {
		Always   string  `json:"always"`
		Nullable *string `json:"nullable"`
		Optional *string `json:"optional,omitempty"`
	}
	schemas := map[string]any{}
	schemaOf(reflect.TypeOf(sample{}), schemas)
	s := schemas["sample"].(map[string]any)
	if got := strings.Join(s["required"].([]string), ","); got != "always,nullable" {
		t.Errorf("required = %s, want always,nullable", got)
	}
	props := s["properties"].(map[string]any)
	if _, ok := props["nullable"].(map[string]any)["anyOf"]; !ok {
		t.Errorf("nullable field schema %v should admit null", props["nullable"])
	}
	if _, ok := props["optional"].(map[string]any)["anyOf"]; ok {
		t.Errorf("an omitted-when-empty field is simply optional: %v", props["optional"])
	}
}
