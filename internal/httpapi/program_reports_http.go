package httpapi

import (
	"bytes"
	"context"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"duikou/internal/apperr"
	"duikou/internal/auth"
	"duikou/internal/program"
	"duikou/internal/programs"
)

// ProgramReportService is what the API needs of the program's reports
// (programs.Reports).
type ProgramReportService interface {
	Report(ctx context.Context, p auth.Principal, q programs.ReportQuery) (programs.Report, error)
	Compliance(ctx context.Context, p auth.Principal, pairingID, year string) (programs.PairingCompliance, error)
	Reminders(ctx context.Context, p auth.Principal) ([]program.Reminder, error)
}

var _ ProgramReportService = (*programs.Reports)(nil)

// ReminderList is the half-year reports due soon.
type ReminderList struct {
	Items []program.Reminder `json:"items"`
}

// Export formats of a report.
const (
	xlsxType = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	csvType  = "text/csv"
)

// reportFormat is format=json|csv|xlsx|html, else what Accept names first
// among them, else JSON.
func reportFormat(r *http.Request) (string, error) {
	if f := r.URL.Query().Get("format"); f != "" {
		switch f {
		case "json", "csv", "xlsx", "html":
			return f, nil
		}
		return "", apperr.Field("format", "must be json, csv, xlsx or html")
	}
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		switch strings.TrimSpace(mt) {
		case xlsxType:
			return "xlsx", nil
		case csvType:
			return "csv", nil
		case "text/html":
			return "html", nil
		case "application/json", "application/problem+json", "*/*":
			return "json", nil
		}
	}
	return "json", nil
}

func (a *API) mountProgramReports(r chi.Router) {
	r.With(a.allow(programReaders...)).Get("/program-reports", a.progReport)
	r.With(a.allow(programReaders...)).Get("/program-reports/compliance", a.progCompliance)
	r.With(a.allow(programOffice...)).Get("/program-reports/reminders", a.progReminders)
}

func (a *API) progReport(w http.ResponseWriter, r *http.Request) {
	format, err := reportFormat(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	rep, err := a.ProgramReports.Report(r.Context(), principal(r), programs.ReportQuery{PairingID: q.Get("pairing_id"),
		HospitalID: q.Get("hospital_id"), Province: q.Get("province"), County: q.Get("county"), Period: q.Get("period")})
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.writeReport(w, r, format, "program-report-"+rep.Scope.Kind+"-"+rep.Period.Label, programs.DocumentTitle(rep), rep, rep, rep.Tables())
}

func (a *API) progCompliance(w http.ResponseWriter, r *http.Request) {
	format, err := reportFormat(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	c, err := a.ProgramReports.Compliance(r.Context(), principal(r), q.Get("pairing_id"), q.Get("year"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	year, _ := program.ParsePeriod(c.Year)
	head := programs.Report{Scope: programs.Scope{Kind: "pairing", PairingID: c.PairingID, Name: c.SupportingName + " → " + c.RecipientName},
		Period: year}
	head.AsOf, _ = program.ParseDay(c.AsOf)
	a.writeReport(w, r, format, "program-compliance-"+c.Year, "对口支援工作达标情况", c, head, []programs.Table{programs.ComplianceTable(c)})
}

func (a *API) progReminders(w http.ResponseWriter, r *http.Request) {
	rs, err := a.ProgramReports.Reminders(r.Context(), principal(r))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ReminderList{Items: rs})
}

// writeReport answers a report in the format asked: body as JSON, or its
// tables as CSV, a workbook or a printable page. Reports are never cached:
// records change under them.
func (a *API) writeReport(w http.ResponseWriter, r *http.Request, format, name, title string, body any, head programs.Report, tables []programs.Table) {
	var buf bytes.Buffer
	var err error
	h := w.Header()
	switch format {
	case "json":
		h.Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, body)
		return
	case "csv":
		err = programs.WriteCSV(&buf, tables)
		h.Set("Content-Type", "text/csv; charset=utf-8")
		h.Set("Content-Disposition", `attachment; filename="`+name+`.csv"`)
	case "xlsx":
		err = programs.WriteXLSX(&buf, tables)
		h.Set("Content-Type", xlsxType)
		h.Set("Content-Disposition", `attachment; filename="`+name+`.xlsx"`)
	case "html":
		err = programs.WriteHTML(&buf, title, head, tables)
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", publicPageCSP)
	}
	if err != nil {
		h.Del("Content-Type")
		h.Del("Content-Disposition")
		h.Del("Content-Security-Policy")
		a.writeError(w, r, err)
		return
	}
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}
