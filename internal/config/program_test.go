package config

import (
	"reflect"
	"strings"
	"testing"

	"duikou/internal/program"
)

func TestProgramTermsDefaultToTheProgramsDocuments(t *testing.T) {
	c, err := Load(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Program, program.DefaultConfig()) {
		t.Fatalf("program terms: %+v, want %+v", c.Program, program.DefaultConfig())
	}
}

func TestProgramTermsAreSetAndChecked(t *testing.T) {
	c, err := Load([]string{"-program-arrival-days", "3", "-program-evaluation-criteria", "work:工作:60,attitude:态度:40"},
		env(map[string]string{"DUIKOU_PROGRAM_EVALUATION_DUE_DAY": "5"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Program.ArrivalDays != 3 || c.Program.EvaluationDueDay != 5 || c.Program.ScheduleLeadDays != 7 ||
		!reflect.DeepEqual(c.Program.Criteria, []program.Criterion{{Code: "work", Label: "工作", Max: 60}, {Code: "attitude", Label: "态度", Max: 40}}) {
		t.Fatalf("program terms: %+v", c.Program)
	}
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"-program-arrival-days", "x"}, "-program-arrival-days"},
		{[]string{"-program-evaluation-due-day", "31"}, "evaluation due day"},
		{[]string{"-program-evaluation-criteria", "work:工作"}, "-program-evaluation-criteria"},
		{[]string{"-program-evaluation-criteria", "work:工作:0"}, "positive maximum"},
		{[]string{"-program-evaluation-criteria", "a:甲:5,a:乙:5"}, "unique code"},
	} {
		if _, err := Load(tc.args, env(nil)); err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%v: %v, want an error saying %q", tc.args, err, tc.says)
		}
	}
}
