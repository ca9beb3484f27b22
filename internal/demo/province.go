// Package demo loads a realistic, fictional province: a health commission,
// two tertiary hospitals, four county hospitals, three township health
// centres, their departments, pairings, staff and a user of every role.
// Everything is found by natural key (organisation code, department code,
// username) before it is created, so loading twice changes nothing.
package demo

// Password is shared by every demo account and printed at start. It is for
// the demo province only.
const Password = "duikou-demo-2026"

// Province is the fictional province's name.
const Province = "青川省"

type hospital struct {
	Key, Name, OrgCode, Tier, County, Address string
	Departments                               []department
}

type department struct{ Code, Name string }

type pairing struct{ Supporting, Recipient, StartsOn string }

type person struct {
	Hospital, Department, Name, Title, Phone string
	// Username and Roles make the person a user; empty for staff without a login.
	Username   string
	Roles      []string
	Supervisor bool
}

var tertiaryDepartments = []department{
	{"03.01", "呼吸内科"}, {"03.03", "神经内科"}, {"03.04", "心血管内科"},
	{"04.01", "普通外科"}, {"04.02", "神经外科"}, {"04.03", "骨科"},
	{"05", "妇产科"}, {"07", "儿科"}, {"20", "急诊医学科"}, {"21", "康复医学科"},
	{"28", "重症医学科"}, {"30", "医学检验科"}, {"32", "医学影像科"},
}

// reservedBeds is each tertiary department's green-channel bed pool, by
// department code: the critical pathways (chest pain, stroke, trauma,
// maternal, neonatal) and emergency keep a few beds each; laboratory,
// imaging and rehabilitation admit no up-referred inpatients this way.
var reservedBeds = map[string]int{
	"03.01": 2, "03.03": 3, "03.04": 4, "04.01": 2, "04.02": 2, "04.03": 3,
	"05": 3, "07": 2, "20": 4, "28": 2,
}

var countyDepartments = []department{
	{"03", "内科"}, {"04", "外科"}, {"05", "妇产科"}, {"07", "儿科"},
	{"20", "急诊医学科"}, {"21", "康复医学科"}, {"32", "医学影像科"},
}

var townshipDepartments = []department{{"01", "预防保健科"}, {"02", "全科医疗科"}}

var hospitals = []hospital{
	{"commission", "青川省卫生健康委员会", "11510000MB0000001Y", "authority", "", "锦城市人民南路一段 12 号", nil},
	{"sph", "青川省人民医院", "12510000MB0000002A", "tertiary", "锦城市", "锦城市青龙街 32 号", tertiaryDepartments},
	{"fah", "锦城医科大学附属第一医院", "12510000MB0000003C", "tertiary", "锦城市", "锦城市学府路 17 号", tertiaryDepartments},
	{"linxi", "临溪县人民医院", "12511523MB0000004E", "secondary", "临溪县", "临溪县城关镇河滨路 8 号", countyDepartments},
	{"shimen", "石门县人民医院", "12511524MB0000005G", "secondary", "石门县", "石门县东城大道 101 号", countyDepartments},
	{"yunling", "云岭县人民医院", "12511525MB0000006J", "secondary", "云岭县", "云岭县新华街 45 号", countyDepartments},
	{"baisha", "白沙县中医医院", "12511526MB0000007L", "secondary", "白沙县", "白沙县文昌路 9 号", countyDepartments},
	{"chengguan", "临溪县城关镇卫生院", "12511523MB0000008N", "township", "临溪县", "临溪县城关镇北街 3 号", townshipDepartments},
	{"qiaotou", "石门县桥头镇卫生院", "12511524MB0000009Q", "township", "石门县", "石门县桥头镇正街 21 号", townshipDepartments},
	{"machang", "云岭县马场乡卫生院", "12511525MB0000010T", "township", "云岭县", "云岭县马场乡场镇 1 号", townshipDepartments},
}

// Pairings follow the program: each county hospital has a tertiary partner
// (临溪 has two, a provincial and a university hospital), and each township
// centre is paired with its county hospital.
var pairings = []pairing{
	{"sph", "linxi", "2025-01-01"},
	{"sph", "shimen", "2025-01-01"},
	{"fah", "yunling", "2025-03-01"},
	{"fah", "baisha", "2025-03-01"},
	{"fah", "linxi", "2025-07-01"},
	{"linxi", "chengguan", "2025-01-01"},
	{"shimen", "qiaotou", "2025-01-01"},
	{"yunling", "machang", "2025-06-01"},
}

var people = []person{
	// Health commission.
	{"commission", "", "周建国", "", "028-86130001", "admin", []string{"admin"}, false},
	{"commission", "", "何静", "", "028-86130002", "auditor", []string{"auditor"}, false},
	{"commission", "", "罗文华", "", "028-86130003", "commission.office", []string{"program_office"}, false},
	// 青川省人民医院 (tertiary).
	{"sph", "03.04", "王立新", "chief_physician", "13808000101", "sph.cardio", []string{"specialist"}, true},
	{"sph", "03.03", "陈晓燕", "associate_chief_physician", "13808000102", "sph.neuro", []string{"specialist"}, false},
	{"sph", "20", "刘洋", "attending_physician", "13808000103", "sph.desk", []string{"referral_desk"}, true},
	{"sph", "04.03", "赵志强", "associate_chief_physician", "13808000104", "sph.dispatch", []string{"dispatched_doctor", "specialist"}, false},
	{"sph", "", "孙丽", "", "13808000105", "sph.office", []string{"program_office"}, false},
	{"sph", "05", "吴红梅", "chief_nurse", "13808000106", "", nil, false},
	// 锦城医科大学附属第一医院 (tertiary).
	{"fah", "32", "杨帆", "associate_chief_physician", "13808000201", "fah.imaging", []string{"specialist"}, false},
	{"fah", "07", "黄敏", "chief_physician", "13808000202", "fah.peds", []string{"specialist"}, false},
	{"fah", "20", "郭磊", "attending_physician", "13808000203", "fah.desk", []string{"referral_desk"}, true},
	// County hospitals.
	{"linxi", "03", "李明", "attending_physician", "13908100301", "linxi.doctor", []string{"county_doctor"}, false},
	{"linxi", "20", "张华", "attending_physician", "13908100302", "linxi.desk", []string{"referral_desk"}, false},
	{"linxi", "", "马芳", "", "13908100303", "linxi.office", []string{"program_office"}, false},
	{"shimen", "03", "冯涛", "resident_physician", "13908100401", "shimen.doctor", []string{"county_doctor"}, false},
	{"shimen", "20", "邓丽娟", "nurse_in_charge", "13908100402", "shimen.desk", []string{"referral_desk"}, false},
	{"yunling", "04", "蒋伟", "attending_physician", "13908100501", "yunling.doctor", []string{"county_doctor"}, false},
	{"baisha", "03", "唐雪", "attending_physician", "13908100601", "baisha.doctor", []string{"county_doctor"}, false},
	// Township health centres.
	{"chengguan", "02", "彭小军", "resident_physician", "13908100701", "chengguan.doctor", []string{"county_doctor"}, false},
	{"qiaotou", "02", "曾凤", "resident_physician", "13908100801", "qiaotou.doctor", []string{"county_doctor"}, false},
}
