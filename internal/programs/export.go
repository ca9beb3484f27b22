package programs

// Exports of the reports: the same tables as CSV (UTF-8 with a byte-order
// mark, which Excel needs to read Chinese as UTF-8 rather than the
// system's GBK), as an Excel workbook (one sheet per table) and as a
// printable HTML page in Chinese.

import (
	"embed"
	"encoding/csv"
	"fmt"
	"html/template"
	"io"
	"strconv"

	"github.com/xuri/excelize/v2"

	"duikou/internal/program"
)

// Table is one section of a report: a sheet of the workbook, a block of
// the CSV, a table of the page.
type Table struct {
	Sheet  string // the workbook's sheet name (at most 31 characters)
	Title  string
	Header []string
	Rows   [][]string
}

func itoa(n int) string    { return strconv.Itoa(n) }
func pct(f float64) string { return strconv.FormatFloat(f*100, 'f', 1, 64) + "%" }
func dec(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }

// lightText is how a light is written in the exports.
var lightText = map[program.Light]string{program.Green: "绿", program.Amber: "黄", program.Red: "红"}

var scopeKinds = map[string]string{"pairing": "结对", "hospital": "医院", "county": "县", "province": "省"}

// Tables lays a report out for export.
func (r Report) Tables() []Table {
	w := r.Workload
	work := func(label string, logged, duikou, total int) []string {
		return []string{label, itoa(logged), itoa(duikou), itoa(total)}
	}
	out := []Table{
		{Sheet: "概况", Title: "概况", Header: []string{"项目", "内容"}, Rows: [][]string{
			{"范围", scopeKinds[r.Scope.Kind] + "：" + r.Scope.Name},
			{"统计期间", r.Period.Label + "（" + r.Period.From + " 至 " + r.Period.To + "）"},
			{"结对数", itoa(r.Pairings)},
			{"派驻人次", itoa(r.Postings)},
			{"未确认的工作日志条数（不计入）", itoa(w.Unconfirmed)},
		}},
		{Sheet: "工作量", Title: "工作量（受援医院已确认的日志；会诊与教学查房另加对口平台内完成的）", Header: []string{"项目", "日志", "平台内", "合计"}, Rows: [][]string{
			work("门诊人次", w.Logged.Outpatients, 0, w.Total.Outpatients),
			work("查房次数", w.Logged.WardRounds, 0, w.Total.WardRounds),
			work("手术台次", w.Logged.Operations, 0, w.Total.Operations),
			work("示教手术", w.Logged.SurgicalDemos, 0, w.Total.SurgicalDemos),
			work("教学查房", w.Logged.TeachingRounds, w.DuikouTeachingRounds, w.Total.TeachingRounds),
			work("专题讲座", w.Logged.Lectures, 0, w.Total.Lectures),
			work("疑难及死亡病例讨论", w.Logged.CaseDiscussions, 0, w.Total.CaseDiscussions),
			work("会诊", w.Logged.Consultations, w.DuikouConsultations, w.Total.Consultations),
			work("培训人次", w.Logged.PeopleTrained, 0, w.Total.PeopleTrained),
			work("义诊次数", w.Logged.FreeClinics, 0, w.Total.FreeClinics),
			work("义诊服务人次", w.Logged.FreeClinicPeople, 0, w.Total.FreeClinicPeople),
			work("新技术新项目", w.Logged.NewTechniques, 0, w.Total.NewTechniques),
		}},
		{Sheet: "考勤与到岗", Title: "考勤、月评与到岗", Header: []string{"项目", "数值"}, Rows: [][]string{
			{"应出勤天数", itoa(r.Attendance.WorkDays)},
			{"出勤天数", itoa(r.Attendance.Present)},
			{"其中受援医院已确认", itoa(r.Attendance.Confirmed)},
			{"请假天数", itoa(r.Attendance.Leave)},
			{"缺勤或未记录天数", itoa(r.Attendance.Absent)},
			{"出勤率", pct(r.Attendance.Rate)},
			{"月评份数", itoa(r.Evaluations.Filed)},
			{"月评平均总分", dec(r.Evaluations.AverageTotal)},
			{"逾期提交的月评", itoa(r.Evaluations.Late)},
			{"逾期未评的月份", itoa(r.Evaluations.Overdue)},
			{"应报到人数", itoa(r.Arrivals.Due)},
			{"按时报到", itoa(r.Arrivals.OnTime)},
			{"迟到报到", itoa(r.Arrivals.Late)},
			{"未报到（逾期）", itoa(r.Arrivals.Missing)},
			{"尚未到期", itoa(r.Arrivals.Pending)},
		}},
		{Sheet: "进修与远程", Title: "进修人员与远程医疗", Header: []string{"项目", "数值"}, Rows: [][]string{
			{"进修人次", itoa(r.Trainees.Stays)},
			{"进修人数", itoa(r.Trainees.Staff)},
			{"本期开始进修", itoa(r.Trainees.Started)},
			{"进修一个月以上", itoa(r.Trainees.MonthUp)},
			{"本期进修人天", itoa(r.Trainees.InPeriod)},
			{"远程会诊", itoa(r.Sessions.ByKind["consult"])},
			{"多学科会诊", itoa(r.Sessions.ByKind["mdt"])},
			{"远程教学查房", itoa(r.Sessions.ByKind["teaching_round"])},
			{"远程影像诊断", itoa(r.Sessions.ByKind["imaging_review"])},
			{"远程专家门诊", itoa(r.Sessions.ByKind["expert_clinic"])},
			{"远程合计", itoa(r.Sessions.Total)},
		}},
	}
	refs := Table{Sheet: "双向转诊", Title: fmt.Sprintf("双向转诊（上转 %d 例，下转 %d 例）；县级医院上转前%d位病种（%s 至 %s）",
		r.Referrals.Up, r.Referrals.Down, TopUpDiagnoses, r.Referrals.DiagnosesFrom, r.Referrals.DiagnosesTo),
		Header: []string{"县级医院", "位次", "ICD-10", "诊断", "例数"}}
	for _, c := range r.Referrals.TopByCounty {
		for i, d := range c.Items {
			refs.Rows = append(refs.Rows, []string{c.Name, itoa(i + 1), d.Code, d.Text, itoa(d.Count)})
		}
		if c.Hidden > 0 {
			refs.Rows = append(refs.Rows, []string{c.Name, "", "", fmt.Sprintf("另有%d种病种例数少于%d，不予显示", c.Hidden, c.MinCount), ""})
		}
	}
	out = append(out, refs)
	if len(r.Compliance) > 0 {
		out = append(out, ComplianceTable(r.Compliance...))
	}
	return out
}

// ComplianceTable lays checklists out for export.
func ComplianceTable(cs ...PairingCompliance) Table {
	t := Table{Sheet: "合规", Title: "对口支援工作达标情况", Header: []string{"结对", "年度", "项目", "状态", "说明"}}
	for _, c := range cs {
		for _, it := range c.Items {
			t.Rows = append(t.Rows, []string{c.SupportingName + " → " + c.RecipientName, c.Year, it.Label, lightText[it.Light], it.Reason})
		}
	}
	return t
}

// WriteCSV writes the tables one after another, each under its title and
// followed by a blank line, after a UTF-8 byte-order mark.
func WriteCSV(w io.Writer, tables []Table) error {
	if _, err := io.WriteString(w, "\uFEFF"); err != nil {
		return err
	}
	cw := csv.NewWriter(w)
	for _, t := range tables {
		rows := append([][]string{{t.Title}, t.Header}, t.Rows...)
		rows = append(rows, []string{})
		for _, row := range rows {
			if err := cw.Write(guardFormulas(row)); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

// guardFormulas: a spreadsheet runs a cell starting with = + - or @ as a
// formula; hospital names and reasons are typed by people, so such a cell
// is written with a leading apostrophe (numbers are never negative here).
func guardFormulas(row []string) []string {
	out := make([]string, len(row))
	for i, c := range row {
		if c != "" && (c[0] == '=' || c[0] == '+' || c[0] == '-' || c[0] == '@') {
			c = "'" + c
		}
		out[i] = c
	}
	return out
}

// WriteXLSX writes one sheet per table: its title, its header, its rows;
// figures are numbers so that the office can sum them.
func WriteXLSX(w io.Writer, tables []Table) error {
	f := excelize.NewFile()
	defer f.Close()
	for i, t := range tables {
		name := t.Sheet
		if i == 0 {
			if err := f.SetSheetName("Sheet1", name); err != nil {
				return err
			}
		} else if _, err := f.NewSheet(name); err != nil {
			return err
		}
		rows := append([][]string{{t.Title}, t.Header}, t.Rows...)
		for r, row := range rows {
			vals := make([]any, len(row))
			for c, v := range row {
				if n, err := strconv.Atoi(v); err == nil && r >= 2 {
					vals[c] = n
				} else {
					vals[c] = v
				}
			}
			cell, err := excelize.CoordinatesToCellName(1, r+1)
			if err != nil {
				return err
			}
			if err := f.SetSheetRow(name, cell, &vals); err != nil {
				return err
			}
		}
		if err := f.SetColWidth(name, "A", "E", 22); err != nil {
			return err
		}
	}
	return f.Write(w)
}

//go:embed templates/report.html
var templateFiles embed.FS

var reportTemplate = template.Must(template.ParseFS(templateFiles, "templates/report.html"))

type htmlCell struct{ Text, Class string }

type htmlTable struct {
	Title  string
	Header []string
	Rows   [][]htmlCell
}

var lightClass = map[string]string{"绿": "green", "黄": "amber", "红": "red"}

// WriteHTML writes the printable page (A4, Chinese) of tables under a
// title; every text is escaped by html/template.
func WriteHTML(w io.Writer, title string, r Report, tables []Table) error {
	data := struct {
		Title, Scope, From, To, AsOf string
		Tables                       []htmlTable
	}{Title: title, Scope: scopeKinds[r.Scope.Kind] + "：" + r.Scope.Name, From: r.Period.From, To: r.Period.To,
		AsOf: r.AsOf.In(program.Zone).Format("2006-01-02 15:04")}
	for _, t := range tables {
		ht := htmlTable{Title: t.Title, Header: t.Header}
		for _, row := range t.Rows {
			cells := make([]htmlCell, len(row))
			for i, c := range row {
				cells[i] = htmlCell{Text: c, Class: lightClass[c]}
			}
			ht.Rows = append(ht.Rows, cells)
		}
		data.Tables = append(data.Tables, ht)
	}
	return reportTemplate.Execute(w, data)
}

// DocumentTitle is the page's heading: a half year's report is the
// half-year work report (半年工作报告) the program asks for.
func DocumentTitle(r Report) string {
	kind := map[program.PeriodKind]string{program.MonthPeriod: "月度", program.QuarterPeriod: "季度",
		program.HalfPeriod: "半年", program.YearPeriod: "年度"}[r.Period.Kind]
	return "对口支援" + kind + "工作报告"
}
