package httpapi

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"duikou/internal/auth"
	"duikou/referral/icd10"
)

func TestICD10Search(t *testing.T) {
	list, err := icd10.Load()
	if err != nil {
		t.Fatal(err)
	}
	api := New(Config{}, Deps{Log: slog.New(slog.DiscardHandler), ICD10: list})
	tests := []struct {
		name, query string
		status      int
		first       string
		max         int
	}{
		{"a code finds itself first", "q=I21.0", http.StatusOK, "I21.0", 20},
		{"a Chinese name finds its codes", "q=%E8%84%91%E6%A2%97%E6%AD%BB", http.StatusOK, "I63", 20}, // 脑梗死
		{"the limit bounds the answer", "q=I&limit=2", http.StatusOK, "I05", 2},
		{"an empty query answers an empty list", "q=", http.StatusOK, "", 0},
		{"a bad limit is blamed on the field", "q=I&limit=500", http.StatusBadRequest, "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodGet, "/icd10?"+tc.query, nil)
			req = req.WithContext(auth.WithPrincipal(req.Context(), auth.Principal{UserID: "u1", HospitalID: "h1", Roles: []auth.Role{auth.CountyDoctor}}))
			api.icd10Search(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if tc.status != http.StatusOK {
				var p struct {
					Errors []struct{ Field string } `json:"errors"`
				}
				if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || len(p.Errors) != 1 || p.Errors[0].Field != "limit" {
					t.Fatalf("problem %s; want one error on limit", rec.Body)
				}
				return
			}
			var got List[icd10.Code]
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if len(got.Items) > tc.max || (tc.first != "" && (len(got.Items) == 0 || got.Items[0].Code != tc.first)) {
				t.Fatalf("got %v; want at most %d starting with %q", got.Items, tc.max, tc.first)
			}
			if tc.first == "" && len(got.Items) != 0 {
				t.Fatalf("got %v; want none", got.Items)
			}
		})
	}
}
