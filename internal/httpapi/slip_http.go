package httpapi

import (
	"bytes"
	"context"
	"embed"
	"encoding/base64"
	"html/template"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	qrcode "github.com/skip2/go-qrcode"

	"duikou/internal/auth"
	"duikou/internal/referrals"
	"duikou/referral"
)

// SlipService builds printable referral slips (referrals.Slips).
type SlipService interface {
	Slip(ctx context.Context, p auth.Principal, id string) (referrals.Slip, error)
}

//go:embed templates/slip.html
var slipFiles embed.FS

// slipTemplate is parsed once; html/template escapes every value by its
// context, so whatever a referrer typed prints as text.
var slipTemplate = template.Must(template.ParseFS(slipFiles, "templates/slip.html"))

// slipCSP lets the page use nothing but its own inline style and the QR code
// as a data: image: no script, no fetch, no form, no frame.
const slipCSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// slipQRSize is the QR image's side in pixels: printed at 32 mm that is about
// 200 dpi, plenty for a phone or desk scanner.
const slipQRSize = 256

func (a *API) mountSlips(r chi.Router) {
	r.With(a.allow(auth.ClinicalRoles...)).Get("/referrals/{referralID}/slip", a.refSlip)
}

// refSlip answers the slip as an HTML page to print (A4). Errors are
// problem documents like everywhere else.
func (a *API) refSlip(w http.ResponseWriter, r *http.Request) {
	s, err := a.Slips.Slip(r.Context(), auth.FromContext(r.Context()), chi.URLParam(r, "referralID"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	page, err := renderSlip(s, time.Now())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", slipCSP)
	h.Set("Cache-Control", "no-store") // it carries patient data
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(page)
}

// slipQR is the ticket number as a QR code, a PNG data: URL.
func slipQR(number string) (template.URL, error) {
	png, err := qrcode.Encode(number, qrcode.Medium, slipQRSize)
	if err != nil {
		return "", err
	}
	// A data: URL built here from PNG bytes, not from anything a user typed.
	return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png)), nil
}

// slipView is what the template prints: the slip and its labels in Chinese.
type slipView struct {
	S                                   referrals.Slip
	R                                   referral.Referral
	QR                                  template.URL
	Direction, Priority, Category, Risk string
	Status, Sex, Transport, Escort      string
	Window, Submitted, Printed          string
	Decided                             bool
	Decision, DecidedAt                 string
	ScheduleKind, ScheduleAt            string
}

// slipZone is where the printed times are read: the program's hospitals are
// all on China time.
var slipZone = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		return time.FixedZone("CST", 8*3600)
	}
	return loc
}()

func slipTime(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "—"
	}
	return t.In(slipZone).Format("2006-01-02 15:04")
}

func renderSlip(s referrals.Slip, now time.Time) ([]byte, error) {
	t := s.Referral
	qr, err := slipQR(t.Number)
	if err != nil {
		return nil, err
	}
	v := slipView{S: s, R: t, QR: qr,
		Direction: label(slipDirections, string(t.Direction)), Priority: label(slipPriorities, string(t.Priority)),
		Category: label(slipCategories, string(t.GreenCategory)), Risk: label(slipRisks, t.TransferRisk.String()),
		Status: label(slipStatuses, string(t.Status)), Sex: label(slipSexes, string(s.Patient.Sex)),
		Transport: label(slipTransports, string(t.Transport.Mode)), Escort: label(slipEscorts, string(t.Transport.Escort)),
		Window: "—", Submitted: slipTime(t.SubmittedAt), Printed: slipTime(&now),
	}
	if w := t.RequestedWindow; w != nil {
		v.Window = slipTime(&w.From) + " 至 " + slipTime(&w.To)
	}
	if t.DecidedAt != nil {
		v.Decided, v.DecidedAt = true, slipTime(t.DecidedAt)
		switch {
		case t.RejectReason != "":
			v.Decision = "不予接收：" + label(slipRejectReasons, string(t.RejectReason))
		case t.Redirect != nil:
			v.Decision = "改转他院或他科（见新转诊单）"
		default:
			v.Decision = "同意接收"
		}
	}
	if sc := t.Schedule; sc != nil {
		v.ScheduleKind, v.ScheduleAt = label(slipScheduleKinds, string(sc.Kind)), slipTime(&sc.At)
	}
	var b bytes.Buffer
	if err := slipTemplate.Execute(&b, v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// label is the Chinese label of a code, or the code itself when it has none
// (a value added later still prints).
func label(m map[string]string, code string) string {
	if code == "" {
		return "—"
	}
	if l, ok := m[code]; ok {
		return l
	}
	return code
}

var (
	slipDirections = map[string]string{"up": "上转", "down": "下转"}
	slipPriorities = map[string]string{"routine": "普通", "urgent": "紧急", "emergency": "急危重"}
	slipCategories = map[string]string{"chest_pain": "胸痛", "stroke": "卒中", "trauma": "创伤", "maternal": "危重孕产妇",
		"neonatal": "危重新生儿", "other_critical": "其他急危重症"}
	slipRisks    = map[string]string{"I": "Ⅰ级（高危）", "II": "Ⅱ级（中危）", "III": "Ⅲ级（低危）"}
	slipStatuses = map[string]string{"draft": "草稿", "submitted": "已提交，待受理", "claimed": "已受理，审核中", "accepted": "已同意接收",
		"rejected": "不予接收", "info_requested": "待补充资料", "redirected": "已改转他院", "scheduled": "已安排",
		"in_transit": "转运中", "arrived": "已到达", "completed": "已完成", "closed": "已关闭", "cancelled": "已取消", "no_show": "未到诊"}
	slipSexes         = map[string]string{"male": "男", "female": "女", "unknown": "未知"}
	slipTransports    = map[string]string{"ambulance": "救护车", "hospital_vehicle": "医院车辆", "self": "自行前往", "other": "其他"}
	slipEscorts       = map[string]string{"none": "无", "family": "家属", "nurse": "护士", "doctor": "医生"}
	slipRejectReasons = map[string]string{"no_capacity": "床位或能力不足", "outside_scope": "超出诊疗范围",
		"incomplete_information": "资料不全", "not_indicated": "无转诊指征", "patient_declined": "患者拒绝", "other": "其他"}
	slipScheduleKinds = map[string]string{"bed": "住院床位", "appointment": "门诊预约"}
)
