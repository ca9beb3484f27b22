package httpapi

import (
	"encoding/json"
	"maps"
	"net/http"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"duikou/internal/auth"
)

// operation documents one route. The table of operations (openapi_ops.go) is
// written by hand beside the router; a test walks the router and fails when a
// route is missing from it, or when it documents a route that does not exist.
type operation struct {
	Method, Path, Summary, Tag string
	// Roles that may call it; empty with Public false means any logged-in user.
	Roles  []auth.Role
	Public bool
	// Request and Response are Go values whose types give the JSON schemas.
	Request  any
	Response any
	Status   int // success status; 200 when zero
	Query    []queryParam
	IfMatch  bool // a change guarded by If-Match
	// ContentType is the media type of a success answer that is not JSON
	// (an event stream, an HTML page); Response is then nil and the
	// Summary says what the body holds.
	ContentType string
	// RawRequest and RawResponse list the media types of a body sent or
	// answered as bytes (a file) instead of JSON, or, with a Response,
	// besides it (a report answered as JSON or exported as a file).
	RawRequest  []string
	RawResponse []string
	// Headers are request headers the operation reads.
	Headers []queryParam
}

type queryParam struct{ Name, Description string }

var (
	openAPIOnce sync.Once
	openAPIDoc  map[string]any
)

func (a *API) openAPI(w http.ResponseWriter, r *http.Request) {
	openAPIOnce.Do(func() { openAPIDoc = buildOpenAPI(operations()) })
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_ = json.NewEncoder(w).Encode(openAPIDoc)
}

func buildOpenAPI(ops []operation) map[string]any {
	schemas := map[string]any{}
	paths := map[string]map[string]any{}
	for _, op := range ops {
		item := paths[op.Path]
		if item == nil {
			item = map[string]any{}
			paths[op.Path] = item
		}
		o := map[string]any{
			"summary":     op.Summary,
			"tags":        []string{op.Tag},
			"operationId": operationID(op),
		}
		var params []any
		for _, name := range pathParams(op.Path) {
			params = append(params, map[string]any{"name": name, "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		for _, q := range op.Query {
			params = append(params, map[string]any{"name": q.Name, "in": "query", "description": q.Description, "schema": map[string]any{"type": "string"}})
		}
		if op.Method == http.MethodPost && !op.Public {
			params = append(params, map[string]any{"name": IdempotencyHeader, "in": "header",
				"description": "makes the request safe to retry: the same key with the same request gets the first answer again; with another request, 422",
				"schema":      map[string]any{"type": "string", "maxLength": 255}})
		}
		for _, h := range op.Headers {
			params = append(params, map[string]any{"name": h.Name, "in": "header", "required": true, "description": h.Description, "schema": map[string]any{"type": "string"}})
		}
		if op.IfMatch {
			params = append(params, map[string]any{"name": "If-Match", "in": "header", "required": true,
				"description": "the ETag read before the change", "schema": map[string]any{"type": "string"}})
		}
		if params != nil {
			o["parameters"] = params
		}
		if op.Public {
			o["security"] = []any{}
		} else {
			roles := "any signed-in user"
			if len(op.Roles) > 0 {
				names := make([]string, len(op.Roles))
				for i, r := range op.Roles {
					names[i] = string(r)
				}
				roles = strings.Join(names, ", ")
			}
			o["description"] = "Roles: " + roles + "."
		}
		if op.Request != nil {
			o["requestBody"] = map[string]any{"required": true, "content": map[string]any{
				"application/json": map[string]any{"schema": schemaOf(reflect.TypeOf(op.Request), schemas)}}}
		}
		if len(op.RawRequest) > 0 {
			o["requestBody"] = map[string]any{"required": true, "content": binaryContent(op.RawRequest)}
		}
		status := op.Status
		if status == 0 {
			status = http.StatusOK
		}
		ok := map[string]any{"description": http.StatusText(status)}
		if op.Response != nil {
			ok["content"] = map[string]any{"application/json": map[string]any{"schema": schemaOf(reflect.TypeOf(op.Response), schemas)}}
		}
		if op.ContentType != "" {
			ok["content"] = map[string]any{op.ContentType: map[string]any{"schema": map[string]any{"type": "string"}}}
		}
		if len(op.RawResponse) > 0 {
			// Beside a JSON answer (a report also exported as files), or alone.
			c := binaryContent(op.RawResponse)
			if js, isMap := ok["content"].(map[string]any); isMap {
				maps.Copy(c, js)
			}
			ok["content"] = c
		}
		responses := map[string]any{strconv.Itoa(status): ok, "default": map[string]any{"$ref": "#/components/responses/Problem"}}
		o["responses"] = responses
		item[strings.ToLower(op.Method)] = o
	}
	schemas["Problem"] = schemaOf(reflect.TypeOf(Problem{}), schemas)
	return map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":       "Duikou API",
			"version":     "1",
			"description": "Paired hospital support: directory, patients and consent, identity and access, audit. Errors are application/problem+json naming the field at fault. Lists take ?cursor= and ?limit= (1–200). Changes take If-Match with the ETag. While the database or Redis cannot be reached, or when the database gives up a change that met another (deadlock), requests answer 503 with Retry-After: retry them (with the same Idempotency-Key).",
		},
		"servers": []any{map[string]any{"url": "/"}},
		"paths":   paths,
		"components": map[string]any{
			"schemas": schemas,
			"securitySchemes": map[string]any{
				"bearer":  map[string]any{"type": "http", "scheme": "bearer"},
				"session": map[string]any{"type": "apiKey", "in": "cookie", "name": SessionCookie},
			},
			"responses": map[string]any{"Problem": map[string]any{"description": "an error",
				"content": map[string]any{"application/problem+json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/Problem"}}}}},
		},
		"security": []any{map[string]any{"bearer": []any{}}, map[string]any{"session": []any{}}},
	}
}

// binaryContent describes a body of raw bytes in each of the media types.
func binaryContent(types []string) map[string]any {
	out := map[string]any{}
	for _, t := range types {
		out[t] = map[string]any{"schema": map[string]any{"type": "string", "format": "binary"}}
	}
	return out
}

func operationID(op operation) string {
	parts := []string{strings.ToLower(op.Method)}
	for _, s := range strings.Split(op.Path, "/") {
		s = strings.Trim(s, "{}")
		if s != "" && s != "api" && s != "v1" {
			parts = append(parts, strings.ReplaceAll(s, "-", "_"))
		}
	}
	return strings.Join(parts, "_")
}

func pathParams(path string) []string {
	var out []string
	for _, s := range strings.Split(path, "/") {
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
			out = append(out, strings.Trim(s, "{}"))
		}
	}
	return out
}

var timeType = reflect.TypeOf(time.Time{})

// schemaOf describes t as JSON Schema, naming struct types in components.
func schemaOf(t reflect.Type, schemas map[string]any) map[string]any {
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t.Kind() == reflect.Pointer:
		return schemaOf(t.Elem(), schemas)
	}
	switch t.Kind() {
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return map[string]any{"type": "string", "contentEncoding": "base64"}
		}
		return map[string]any{"type": "array", "items": schemaOf(t.Elem(), schemas)}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": schemaOf(t.Elem(), schemas)}
	case reflect.Interface:
		return map[string]any{}
	case reflect.Struct:
		name := schemaName(t)
		ref := map[string]any{"$ref": "#/components/schemas/" + name}
		if _, done := schemas[name]; done {
			return ref
		}
		schemas[name] = map[string]any{} // placeholder against recursion
		props := map[string]any{}
		var required []string
		addFields(t, props, &required, schemas)
		s := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
		if len(required) > 0 {
			sort.Strings(required)
			s["required"] = required
		}
		schemas[name] = s
		return ref
	}
	return map[string]any{}
}

func addFields(t reflect.Type, props map[string]any, required *[]string, schemas map[string]any) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				addFields(ft, props, required, schemas)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		omitted := strings.Contains(opts, "omitempty") || strings.Contains(opts, "omitzero")
		schema := schemaOf(f.Type, schemas)
		if f.Type.Kind() == reflect.Pointer && !omitted {
			// Always sent, as null when unset.
			schema = map[string]any{"anyOf": []any{schema, map[string]any{"type": "null"}}}
		}
		props[name] = schema
		if !omitted {
			*required = append(*required, name)
		}
	}
}

func schemaName(t reflect.Type) string {
	name := t.Name()
	if name == "" {
		return "Anonymous"
	}
	// Generic instantiations (List[duikou/internal/x.Y]) get a readable name.
	if i := strings.Index(name, "["); i >= 0 {
		arg := name[i+1 : len(name)-1]
		if j := strings.LastIndex(arg, "."); j >= 0 {
			arg = arg[j+1:]
		}
		name = name[:i] + "Of" + arg
	}
	pkg := t.PkgPath()
	if j := strings.LastIndex(pkg, "/"); j >= 0 {
		pkg = pkg[j+1:]
	}
	if pkg != "" && pkg != "httpapi" {
		name = strings.ToUpper(pkg[:1]) + pkg[1:] + name
	}
	return name
}
