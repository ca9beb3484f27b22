package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"duikou/internal/apperr"
	"duikou/internal/directory"
	"duikou/internal/sqldb"
)

// Directory keeps hospitals, departments, staff and pairings.
type Directory struct {
	db sqldb.DB
}

var _ directory.Store = (*Directory)(nil)

// NewDirectory returns the directory store on db.
func NewDirectory(db sqldb.DB) *Directory { return &Directory{db: db} }

// dirWhere builds a WHERE clause with numbered placeholders.
type dirWhere struct {
	conds []string
	args  []any
}

// add appends a condition; each "?" in cond becomes the next $N.
func (w *dirWhere) add(cond string, args ...any) {
	for _, a := range args {
		w.args = append(w.args, a)
		cond = strings.Replace(cond, "?", fmt.Sprintf("$%d", len(w.args)), 1)
	}
	w.conds = append(w.conds, cond)
}

// in appends "col IN (...)"; an empty set matches nothing.
func (w *dirWhere) in(col string, ids []string) {
	if len(ids) == 0 {
		w.conds = append(w.conds, "1 = 0")
		return
	}
	marks := make([]string, len(ids))
	for i, id := range ids {
		w.args = append(w.args, id)
		marks[i] = fmt.Sprintf("$%d", len(w.args))
	}
	w.conds = append(w.conds, col+" IN ("+strings.Join(marks, ", ")+")")
}

// page appends the id cursor, order and limit.
func (w *dirWhere) page(after string, limit int) string {
	if after != "" {
		w.add("id > ?", after)
	}
	var b strings.Builder
	if len(w.conds) > 0 {
		b.WriteString(" WHERE " + strings.Join(w.conds, " AND "))
	}
	b.WriteString(" ORDER BY id")
	if limit > 0 {
		w.args = append(w.args, limit)
		fmt.Fprintf(&b, " LIMIT $%d", len(w.args))
	}
	return b.String()
}

func dirQueryAll[T any](ctx context.Context, db sqldb.DB, query string, args []any, scan func(sqldb.Rows) (T, error)) ([]T, error) {
	rows, err := db.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func dirNotFound(err error) error {
	if errors.Is(err, sqldb.ErrNoRows) {
		return apperr.ErrNotFound
	}
	return err
}

// dirStaleOrMissing explains an update that touched no row.
func dirStaleOrMissing(ctx context.Context, db sqldb.DB, table, id string) error {
	var n int
	if err := db.QueryRow(ctx, "SELECT count(*) FROM "+table+" WHERE id = $1", id).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return apperr.ErrNotFound
	}
	return apperr.ErrStale
}

// ---- Hospitals ----

const hospitalCols = `id, name, org_code, tier, province, county, address, time_zone, version, created_at, updated_at`

func scanHospital(r sqldb.Row) (directory.Hospital, error) {
	var h directory.Hospital
	err := r.Scan(&h.ID, &h.Name, &h.OrgCode, &h.Tier, &h.Province, &h.County, &h.Address, &h.TimeZone, &h.Version, &h.CreatedAt, &h.UpdatedAt)
	return h, err
}

func orgCodeTaken(err error) error {
	if errors.Is(err, sqldb.ErrUniqueViolation) {
		return apperr.Conflict("org_code: a hospital with this organisation code is already registered")
	}
	return err
}

// CreateHospital inserts h.
func (d *Directory) CreateHospital(ctx context.Context, h directory.Hospital) error {
	_, err := d.db.Exec(ctx, `INSERT INTO hospitals (`+hospitalCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		h.ID, h.Name, h.OrgCode, string(h.Tier), h.Province, h.County, h.Address, h.TimeZone, h.Version, h.CreatedAt, h.UpdatedAt)
	return orgCodeTaken(err)
}

// Hospital returns the hospital with id.
func (d *Directory) Hospital(ctx context.Context, id string) (directory.Hospital, error) {
	h, err := scanHospital(d.db.QueryRow(ctx, `SELECT `+hospitalCols+` FROM hospitals WHERE id = $1`, id))
	return h, dirNotFound(err)
}

// Hospitals lists hospitals matching f.
func (d *Directory) Hospitals(ctx context.Context, f directory.HospitalFilter) ([]directory.Hospital, error) {
	var w dirWhere
	if f.Tier != "" {
		w.add("tier = ?", string(f.Tier))
	}
	if f.Province != "" {
		w.add("province = ?", f.Province)
	}
	if f.County != "" {
		w.add("county = ?", f.County)
	}
	if f.Scoped {
		w.in("id", f.Within)
	}
	q := `SELECT ` + hospitalCols + ` FROM hospitals` + w.page(f.After, f.Limit)
	return dirQueryAll(ctx, d.db, q, w.args, func(r sqldb.Rows) (directory.Hospital, error) { return scanHospital(r) })
}

// UpdateHospital writes h if its stored version is h.Version.
func (d *Directory) UpdateHospital(ctx context.Context, h directory.Hospital) (directory.Hospital, error) {
	n, err := d.db.Exec(ctx, `UPDATE hospitals SET name = $1, org_code = $2, tier = $3, province = $4, county = $5,
		address = $6, time_zone = $7, updated_at = $8, version = version + 1 WHERE id = $9 AND version = $10`,
		h.Name, h.OrgCode, string(h.Tier), h.Province, h.County, h.Address, h.TimeZone, h.UpdatedAt, h.ID, h.Version)
	if err != nil {
		return directory.Hospital{}, orgCodeTaken(err)
	}
	if n == 0 {
		return directory.Hospital{}, dirStaleOrMissing(ctx, d.db, "hospitals", h.ID)
	}
	return d.Hospital(ctx, h.ID)
}

// HospitalIDsInProvince lists the ids of every hospital in province.
func (d *Directory) HospitalIDsInProvince(ctx context.Context, province string) ([]string, error) {
	return dirQueryAll(ctx, d.db, `SELECT id FROM hospitals WHERE province = $1 ORDER BY id`, []any{province},
		func(r sqldb.Rows) (string, error) {
			var id string
			return id, r.Scan(&id)
		})
}

// LockHospitals takes row locks on the hospitals (PostgreSQL) so that two
// transactions changing the pairings of the same hospitals run one after the
// other. SQLite transactions already hold the single write lock.
func (d *Directory) LockHospitals(ctx context.Context, ids ...string) error {
	if d.db.Dialect() != sqldb.Postgres || len(ids) == 0 {
		return nil
	}
	var w dirWhere
	w.in("id", ids)
	rows, err := d.db.Query(ctx, `SELECT id FROM hospitals WHERE `+w.conds[0]+` ORDER BY id FOR UPDATE`, w.args...)
	if err != nil {
		return err
	}
	rows.Close()
	return rows.Err()
}

// ---- Departments ----

const departmentCols = `id, hospital_id, code, name, version, created_at, updated_at`

func scanDepartment(r sqldb.Row) (directory.Department, error) {
	var x directory.Department
	err := r.Scan(&x.ID, &x.HospitalID, &x.Code, &x.Name, &x.Version, &x.CreatedAt, &x.UpdatedAt)
	return x, err
}

func departmentCodeTaken(err error) error {
	if errors.Is(err, sqldb.ErrUniqueViolation) {
		return apperr.Conflict("code: this hospital already has a department with this code")
	}
	return err
}

// CreateDepartment inserts x.
func (d *Directory) CreateDepartment(ctx context.Context, x directory.Department) error {
	_, err := d.db.Exec(ctx, `INSERT INTO departments (`+departmentCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		x.ID, x.HospitalID, x.Code, x.Name, x.Version, x.CreatedAt, x.UpdatedAt)
	return departmentCodeTaken(err)
}

// Department returns the department with id.
func (d *Directory) Department(ctx context.Context, id string) (directory.Department, error) {
	x, err := scanDepartment(d.db.QueryRow(ctx, `SELECT `+departmentCols+` FROM departments WHERE id = $1`, id))
	return x, dirNotFound(err)
}

// Departments lists the departments of one hospital.
func (d *Directory) Departments(ctx context.Context, f directory.DepartmentFilter) ([]directory.Department, error) {
	var w dirWhere
	w.add("hospital_id = ?", f.HospitalID)
	q := `SELECT ` + departmentCols + ` FROM departments` + w.page(f.After, f.Limit)
	return dirQueryAll(ctx, d.db, q, w.args, func(r sqldb.Rows) (directory.Department, error) { return scanDepartment(r) })
}

// UpdateDepartment writes x if its stored version is x.Version.
func (d *Directory) UpdateDepartment(ctx context.Context, x directory.Department) (directory.Department, error) {
	n, err := d.db.Exec(ctx, `UPDATE departments SET code = $1, name = $2, updated_at = $3, version = version + 1
		WHERE id = $4 AND version = $5`, x.Code, x.Name, x.UpdatedAt, x.ID, x.Version)
	if err != nil {
		return directory.Department{}, departmentCodeTaken(err)
	}
	if n == 0 {
		return directory.Department{}, dirStaleOrMissing(ctx, d.db, "departments", x.ID)
	}
	return d.Department(ctx, x.ID)
}

// ---- Staff ----

const staffCols = `id, hospital_id, department_id, name, title, phone, active, version, created_at, updated_at`

func scanStaff(r sqldb.Row) (directory.Staff, error) {
	var s directory.Staff
	err := r.Scan(&s.ID, &s.HospitalID, &s.DepartmentID, &s.Name, &s.Title, &s.Phone, &s.Active, &s.Version, &s.CreatedAt, &s.UpdatedAt)
	s.TitleLabel = s.Title.Label()
	return s, err
}

// CreateStaff inserts s.
func (d *Directory) CreateStaff(ctx context.Context, s directory.Staff) error {
	_, err := d.db.Exec(ctx, `INSERT INTO staff (`+staffCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		s.ID, s.HospitalID, s.DepartmentID, s.Name, string(s.Title), s.Phone, s.Active, s.Version, s.CreatedAt, s.UpdatedAt)
	return err
}

// StaffMember returns the roster entry with id.
func (d *Directory) StaffMember(ctx context.Context, id string) (directory.Staff, error) {
	s, err := scanStaff(d.db.QueryRow(ctx, `SELECT `+staffCols+` FROM staff WHERE id = $1`, id))
	return s, dirNotFound(err)
}

// Staff lists roster entries matching f.
func (d *Directory) Staff(ctx context.Context, f directory.StaffFilter) ([]directory.Staff, error) {
	var w dirWhere
	if f.HospitalID != "" {
		w.add("hospital_id = ?", f.HospitalID)
	}
	if f.DepartmentID != "" {
		w.add("department_id = ?", f.DepartmentID)
	}
	if f.Title != "" {
		w.add("title = ?", string(f.Title))
	}
	if f.Scoped {
		w.in("hospital_id", f.Within)
	}
	q := `SELECT ` + staffCols + ` FROM staff` + w.page(f.After, f.Limit)
	return dirQueryAll(ctx, d.db, q, w.args, func(r sqldb.Rows) (directory.Staff, error) { return scanStaff(r) })
}

// UpdateStaff writes s if its stored version is s.Version.
func (d *Directory) UpdateStaff(ctx context.Context, s directory.Staff) (directory.Staff, error) {
	n, err := d.db.Exec(ctx, `UPDATE staff SET department_id = $1, name = $2, title = $3, phone = $4, active = $5,
		updated_at = $6, version = version + 1 WHERE id = $7 AND version = $8`,
		s.DepartmentID, s.Name, string(s.Title), s.Phone, s.Active, s.UpdatedAt, s.ID, s.Version)
	if err != nil {
		return directory.Staff{}, err
	}
	if n == 0 {
		return directory.Staff{}, dirStaleOrMissing(ctx, d.db, "staff", s.ID)
	}
	return d.StaffMember(ctx, s.ID)
}

// ---- Pairings ----

// Dates are read as text so that both engines answer YYYY-MM-DD.
const pairingCols = `id, supporting_hospital_id, recipient_hospital_id, CAST(starts_on AS TEXT), CAST(ends_on AS TEXT),
	status, version, created_at, updated_at`

func scanPairing(r sqldb.Row) (directory.Pairing, error) {
	var p directory.Pairing
	err := r.Scan(&p.ID, &p.SupportingHospitalID, &p.RecipientHospitalID, &p.StartsOn, &p.EndsOn, &p.Status, &p.Version, &p.CreatedAt, &p.UpdatedAt)
	return p, err
}

func pairingTaken(err error) error {
	if errors.Is(err, sqldb.ErrUniqueViolation) {
		return apperr.Conflict("starts_on: these two hospitals already have a pairing starting on this day")
	}
	return err
}

// CreatePairing inserts p.
func (d *Directory) CreatePairing(ctx context.Context, p directory.Pairing) error {
	_, err := d.db.Exec(ctx, `INSERT INTO pairings (id, supporting_hospital_id, recipient_hospital_id, starts_on, ends_on,
		status, version, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		p.ID, p.SupportingHospitalID, p.RecipientHospitalID, p.StartsOn, p.EndsOn, string(p.Status), p.Version, p.CreatedAt, p.UpdatedAt)
	return pairingTaken(err)
}

// Pairing returns the pairing with id.
func (d *Directory) Pairing(ctx context.Context, id string) (directory.Pairing, error) {
	p, err := scanPairing(d.db.QueryRow(ctx, `SELECT `+pairingCols+` FROM pairings WHERE id = $1`, id))
	return p, dirNotFound(err)
}

// Pairings lists pairings matching f.
func (d *Directory) Pairings(ctx context.Context, f directory.PairingFilter) ([]directory.Pairing, error) {
	var w dirWhere
	if f.HospitalID != "" {
		w.add("(supporting_hospital_id = ? OR recipient_hospital_id = ?)", f.HospitalID, f.HospitalID)
	}
	if f.Status != "" {
		w.add("status = ?", string(f.Status))
	}
	if f.Scoped {
		w.in("supporting_hospital_id", f.Within)
		w.in("recipient_hospital_id", f.Within)
	}
	q := `SELECT ` + pairingCols + ` FROM pairings` + w.page(f.After, f.Limit)
	return dirQueryAll(ctx, d.db, q, w.args, func(r sqldb.Rows) (directory.Pairing, error) { return scanPairing(r) })
}

// UpdatePairing writes p if its stored version is p.Version.
func (d *Directory) UpdatePairing(ctx context.Context, p directory.Pairing) (directory.Pairing, error) {
	n, err := d.db.Exec(ctx, `UPDATE pairings SET starts_on = $1, ends_on = $2, status = $3, updated_at = $4,
		version = version + 1 WHERE id = $5 AND version = $6`,
		p.StartsOn, p.EndsOn, string(p.Status), p.UpdatedAt, p.ID, p.Version)
	if err != nil {
		return directory.Pairing{}, pairingTaken(err)
	}
	if n == 0 {
		return directory.Pairing{}, dirStaleOrMissing(ctx, d.db, "pairings", p.ID)
	}
	return d.Pairing(ctx, p.ID)
}

// PairingsOf lists every pairing with hospitalID on either side.
func (d *Directory) PairingsOf(ctx context.Context, hospitalID string) ([]directory.Pairing, error) {
	q := `SELECT ` + pairingCols + ` FROM pairings WHERE supporting_hospital_id = $1
		UNION ALL SELECT ` + pairingCols + ` FROM pairings WHERE recipient_hospital_id = $1 ORDER BY 1`
	return dirQueryAll(ctx, d.db, q, []any{hospitalID}, func(r sqldb.Rows) (directory.Pairing, error) { return scanPairing(r) })
}
