package signaling

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseMessageNeedsTypeAndSeqAndKnownFields(t *testing.T) {
	for _, c := range []struct {
		name, in string
		ok       bool
	}{
		{"complete", `{"type":"chat","seq":1,"payload":{"text":"hi"}}`, true},
		{"no type", `{"seq":1}`, false},
		{"no seq", `{"type":"leave"}`, false},
		{"unknown field", `{"type":"leave","seq":2,"extra":1}`, false},
		{"not json", `hello`, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseMessage([]byte(c.in))
			if (err == nil) != c.ok {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestDecodeStrictRefusesUnknownFields(t *testing.T) {
	var p ChatPayload
	if err := decodeStrict(json.RawMessage(`{"text":"a","colour":"red"}`), &p); err == nil {
		t.Fatal("unknown field accepted")
	}
	if err := decodeStrict(nil, &p); err == nil {
		t.Fatal("missing payload accepted")
	}
}

func TestViewStateValidation(t *testing.T) {
	good := func() ViewState {
		return ViewState{Series: "1.2.840.1", Image: "img-3", Slice: 12, WindowC: 40, WindowW: 400, Zoom: 1.5,
			Annotations: []Annotation{
				{ID: "a1", Kind: "arrow", Pts: []float64{1, 2, 3, 4}},
				{ID: "a2", Kind: "length", Pts: []float64{1, 2, 30, 40}, Text: "12 mm"},
				{ID: "a3", Kind: "text", Pts: []float64{5, 5}, Text: "病灶"},
			}}
	}
	for _, c := range []struct {
		name   string
		change func(*ViewState)
		ok     bool
	}{
		{"complete", func(*ViewState) {}, true},
		{"negative slice", func(v *ViewState) { v.Slice = -1 }, false},
		{"zoom beyond 64", func(v *ViewState) { v.Zoom = 100 }, false},
		{"unknown annotation kind", func(v *ViewState) { v.Annotations[0].Kind = "star" }, false},
		{"ellipse with two points", func(v *ViewState) { v.Annotations[0] = Annotation{ID: "e", Kind: "ellipse", Pts: []float64{1, 2}} }, false},
		{"text without text", func(v *ViewState) { v.Annotations[2].Text = " " }, false},
		{"control character in label", func(v *ViewState) { v.Annotations[1].Text = "a\x07" }, false},
		{"too many annotations", func(v *ViewState) {
			for i := range 101 {
				v.Annotations = append(v.Annotations, Annotation{ID: "x" + strings.Repeat("y", i%5), Kind: "arrow", Pts: []float64{0, 0, 1, 1}})
			}
		}, false},
		{"id with spaces", func(v *ViewState) { v.Image = "a b" }, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := good()
			c.change(&v)
			if err := v.Validate(); (err == nil) != c.ok {
				t.Fatalf("err = %v", err)
			}
		})
	}
}
