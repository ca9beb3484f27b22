package directory

// Title is a professional title (职称) as a stable code; the Chinese label is
// what people read. Physicians, nurses, pharmacists and technicians each have
// their ladder, from the senior grade (正高) down.
type Title string

// TitleInfo is one title with its label.
type TitleInfo struct {
	Code  Title  `json:"code"`
	Label string `json:"label"`
}

// Titles lists every title in ladder order.
var Titles = []TitleInfo{
	{"chief_physician", "主任医师"},
	{"associate_chief_physician", "副主任医师"},
	{"attending_physician", "主治医师"},
	{"resident_physician", "住院医师"},
	{"chief_nurse", "主任护师"},
	{"associate_chief_nurse", "副主任护师"},
	{"nurse_in_charge", "主管护师"},
	{"senior_nurse", "护师"},
	{"nurse", "护士"},
	{"chief_pharmacist", "主任药师"},
	{"associate_chief_pharmacist", "副主任药师"},
	{"pharmacist_in_charge", "主管药师"},
	{"pharmacist", "药师"},
	{"assistant_pharmacist", "药士"},
	{"chief_technician", "主任技师"},
	{"associate_chief_technician", "副主任技师"},
	{"technician_in_charge", "主管技师"},
	{"technician", "技师"},
	{"assistant_technician", "技士"},
}

// Label is the Chinese name of the title, or "" for an unknown code.
func (t Title) Label() string {
	for _, ti := range Titles {
		if ti.Code == t {
			return ti.Label
		}
	}
	return ""
}

// Valid reports whether t is a known title.
func (t Title) Valid() bool { return t.Label() != "" }
