package httpapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"html"
	"image/color"
	"image/png"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"
	qrcode "github.com/skip2/go-qrcode"

	"duikou/internal/audit"
	"duikou/internal/directory"
	"duikou/internal/patient"
	"duikou/internal/referrals"
	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/internal/store"
	"duikou/referral"
)

// slipHTTPEnv is the referral API with slips, and named departments on both
// sides (one name hostile, as a directory entry could be).
type slipHTTPEnv struct {
	*refHTTPEnv
	audits           *store.AuditLog
	fromDept, toDept string
}

const hostileDept = `心内科</td><script>alert("科")</script>`

func newSlipHTTPEnv(t *testing.T, db sqldb.DB) *slipHTTPEnv {
	t.Helper()
	env := &slipHTTPEnv{refHTTPEnv: newRefHTTPEnv(t, db), audits: store.NewAuditLog(db)}
	dir := store.NewDirectory(db)
	dept := func(h directory.Hospital, code, name string) string {
		now := sqldb.Now()
		d := directory.Department{ID: uuid.Must(uuid.NewV7()).String(), HospitalID: h.ID, Code: code, Name: name, Version: 1, CreatedAt: now, UpdatedAt: now}
		if err := dir.CreateDepartment(context.Background(), d); err != nil {
			t.Fatal(err)
		}
		return d.ID
	}
	env.fromDept, env.toDept = dept(env.county, "03", "内科"), dept(env.tert, "03.04", hostileDept)
	rec := audit.NewLog(env.audits, nil)
	patients := store.NewPatients(db)
	svc := referrals.NewService(db, store.NewReferrals(db), rec, referrals.NewDirectoryRoutes(dir, nil), nil, referral.DefaultDeadlines())
	env.h = New(Config{}, Deps{Log: slog.New(slog.DiscardHandler), Auth: regTestAuth{users: env.users}, Audit: rec,
		Referrals: svc, Slips: referrals.NewSlips(svc, patients, dir, store.NewUsers(db)),
		Idempotency: store.NewIdempotencyKeys(db, 0), Tx: db}).Handler()
	return env
}

var slipQRImage = regexp.MustCompile(`<img class="qr" src="data:image/png;base64,([^"]+)"`)

func TestSlipHTTPPrintsTheTicketForBothPartiesEscapedWithItsNumberAsQRCode(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		env := newSlipHTTPEnv(t, db)
		in := env.input()
		in["referring_department_id"], in["receiving_department_id"] = env.fromDept, env.toDept
		in["reason"] = `<script>alert(1)</script>需冠脉造影`
		in["clinical_summary"] = `"><img src=x onerror=alert(2)>反复胸闷`
		res := env.do(env.doctor, http.MethodPost, "/api/v1/referrals", in)
		if res.code != http.StatusCreated {
			t.Fatalf("create: %d %s", res.code, res.body)
		}
		var draft referral.Referral
		res.json(t, &draft)

		// A draft has no slip: its writer is told so, the other side does
		// not see the draft at all.
		if res := env.do(env.doctor, http.MethodGet, "/api/v1/referrals/"+draft.ID+"/slip", nil); res.code != http.StatusConflict {
			t.Errorf("slip of a draft: %d, want 409", res.code)
		}
		if res := env.do(env.desk, http.MethodGet, "/api/v1/referrals/"+draft.ID+"/slip", nil); res.code != http.StatusNotFound {
			t.Errorf("receiving desk asks for a draft's slip: %d, want 404", res.code)
		}

		sub := env.act(t, env.doctor, draft, "submit", nil, http.StatusOK)
		path := "/api/v1/referrals/" + sub.ID + "/slip"
		for _, c := range []struct {
			name  string
			token string
			want  int
		}{
			{"the referring doctor", env.doctor, http.StatusOK},
			{"the receiving desk", env.desk, http.StatusOK},
			{"a hospital that is no party", env.outsider, http.StatusNotFound},
			{"the program office", env.office, http.StatusForbidden},
		} {
			if res := env.do(c.token, http.MethodGet, path, nil); res.code != c.want {
				t.Errorf("%s: %d, want %d", c.name, res.code, c.want)
			}
		}

		res = env.do(env.desk, http.MethodGet, path, nil)
		page := string(res.body)
		if ct := res.hdr.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("content type %q", ct)
		}
		csp := res.hdr.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "style-src 'unsafe-inline'", "img-src data:"} {
			if !strings.Contains(csp, want) {
				t.Errorf("CSP %q lacks %q", csp, want)
			}
		}
		if strings.Contains(csp, "script-src") {
			t.Errorf("CSP %q allows scripts", csp)
		}
		for _, want := range []string{"双向转诊单", sub.Number, "王秀英", "上转", "紧急", "Ⅱ级", env.county.Name, env.tert.Name, "内科",
			"ref.doctor", "I20.0 不稳定型心绞痛", "医院车辆", "护士", "已提交", "size: A4",
			"&lt;script&gt;alert(1)&lt;/script&gt;需冠脉造影", "&lt;img src=x onerror=alert(2)&gt;反复胸闷", "心内科&lt;/td&gt;&lt;script&gt;"} {
			if !strings.Contains(page, want) {
				t.Errorf("the slip lacks %q", want)
			}
		}
		for _, hostile := range []string{"<script>", "<img src=x", "</td><script"} {
			if strings.Contains(page, hostile) {
				t.Errorf("the slip carries %q unescaped", hostile)
			}
		}

		// The QR code is a PNG of the ticket number's code, module for
		// module. No QR decoder is among the modules this project may use,
		// so the check compares the image with the encoder's own matrix of
		// the number: it proves the image is the number's code (not the id's,
		// not blank), not that the encoder follows the standard.
		m := slipQRImage.FindStringSubmatch(page)
		if m == nil {
			t.Fatal("no inline QR image")
		}
		// As an attribute, the URL is HTML-escaped ("+" as &#43;); a browser
		// reads it unescaped.
		raw, err := base64.StdEncoding.DecodeString(html.UnescapeString(m[1]))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("the QR image is no PNG: %v", err)
		}
		if b := img.Bounds(); b.Dx() != slipQRSize || b.Dy() != slipQRSize {
			t.Fatalf("QR image %v, want %d×%d", b, slipQRSize, slipQRSize)
		}
		code, err := qrcode.New(sub.Number, qrcode.Medium)
		if err != nil {
			t.Fatal(err)
		}
		// The encoder stretches the modules over the whole image, so module
		// i spans pixels [i·size/n, (i+1)·size/n): sample each one's centre.
		bits := code.Bitmap()
		n := len(bits)
		centre := func(i int) int { return (2*i + 1) * slipQRSize / (2 * n) }
		wrong := 0
		for y, row := range bits {
			for x, dark := range row {
				g := color.GrayModel.Convert(img.At(centre(x), centre(y))).(color.Gray)
				if (g.Y < 128) != dark {
					wrong++
				}
			}
		}
		if wrong != 0 || slipQRSize/n < 3 {
			t.Errorf("the QR image differs from the number's code in %d of %d modules (%d px each)", wrong, n*n, slipQRSize/n)
		}

		// Accepted: the slip carries what acceptance grants.
		claimed := env.act(t, env.desk, sub, "claim", nil, http.StatusOK)
		accepted := env.act(t, env.desk, claimed, "accept", map[string]string{"reason": "收入心内科"}, http.StatusOK)
		page = string(env.do(env.doctor, http.MethodGet, path, nil).body)
		for _, want := range []string{"接收意见", "同意接收", "检查单号", accepted.ExamSlipNumber, "免收挂号费", "已同意接收", "ref.desk"} {
			if !strings.Contains(page, want) {
				t.Errorf("the accepted slip lacks %q", want)
			}
		}

		// The receiving desk's slip was a read of the ticket and of the patient.
		desk := env.users[env.desk]
		for _, action := range []string{referrals.ActionRead, patient.ActionRead} {
			rows, err := env.audits.Search(context.Background(), audit.Filter{Action: action, ActorID: desk.UserID, PatientID: env.patient}, audit.Page{Limit: 10})
			if err != nil || len(rows) == 0 {
				t.Errorf("no %s audit row for the desk's slip (%v)", action, err)
			}
		}
	})
}
