package consult

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"

	"golang.org/x/text/encoding/simplifiedchinese"
)

// dcm writes DICOM Part 10 files for the tests.
type dcm struct {
	order    binary.ByteOrder
	explicit bool
	buf      bytes.Buffer
}

func (d *dcm) el(group, element uint16, vr string, value []byte) *dcm {
	if len(value)%2 == 1 {
		value = append(value, ' ')
	}
	d.header(group, element, vr, uint32(len(value)))
	d.buf.Write(value)
	return d
}

func (d *dcm) header(group, element uint16, vr string, n uint32) {
	b := make([]byte, 4)
	d.order.PutUint16(b[0:], group)
	d.order.PutUint16(b[2:], element)
	d.buf.Write(b)
	if !d.explicit || group == 0xFFFE {
		l := make([]byte, 4)
		d.order.PutUint32(l, n)
		d.buf.Write(l)
		return
	}
	d.buf.WriteString(vr)
	if longVRs[vr] {
		l := make([]byte, 6)
		d.order.PutUint32(l[2:], n)
		d.buf.Write(l)
		return
	}
	l := make([]byte, 2)
	d.order.PutUint16(l, uint16(n))
	d.buf.Write(l)
}

// sequence writes a sequence of undefined length holding one item of
// undefined length (with a nested sequence) and one of defined length.
func (d *dcm) sequence(group, element uint16) *dcm {
	d.header(group, element, "SQ", undefinedLength)
	d.header(0xFFFE, 0xE000, "", undefinedLength)
	d.el(0x0008, 0x1150, "UI", []byte("1.2.840.10008.5.1.4.1.1.2"))
	d.header(0x0008, 0x1155, "SQ", undefinedLength) // nested, empty item
	d.header(0xFFFE, 0xE000, "", undefinedLength)
	d.el(0x0020, 0x000D, "UI", []byte("9.9.9")) // inside a sequence: not the study's
	d.header(0xFFFE, 0xE00D, "", 0)
	d.header(0xFFFE, 0xE0DD, "", 0)
	d.header(0xFFFE, 0xE00D, "", 0)
	inner := &dcm{order: d.order, explicit: d.explicit}
	inner.el(0x0008, 0x0100, "SH", []byte("CODE"))
	d.header(0xFFFE, 0xE000, "", uint32(inner.buf.Len()))
	d.buf.Write(inner.buf.Bytes())
	d.header(0xFFFE, 0xE0DD, "", 0)
	return d
}

// file wraps a data set in the preamble and file meta information.
func file(syntax string, dataset []byte, groupLength bool) []byte {
	meta := &dcm{order: binary.LittleEndian, explicit: true}
	meta.el(0x0002, 0x0001, "OB", []byte{0, 1})
	meta.el(0x0002, 0x0002, "UI", []byte("1.2.840.10008.5.1.4.1.1.2\x00"))
	meta.el(0x0002, 0x0010, "UI", []byte(syntax))
	var out bytes.Buffer
	out.Write(make([]byte, 128))
	out.WriteString("DICM")
	if groupLength {
		gl := &dcm{order: binary.LittleEndian, explicit: true}
		n := make([]byte, 4)
		binary.LittleEndian.PutUint32(n, uint32(meta.buf.Len()))
		gl.el(0x0002, 0x0000, "UL", n)
		out.Write(gl.buf.Bytes())
	}
	out.Write(meta.buf.Bytes())
	out.Write(dataset)
	return out.Bytes()
}

// ctDataSet is a CT data set with every wanted tag, a sequence before them,
// and pixel data after them.
func ctDataSet(order binary.ByteOrder, explicit bool, charset string, description []byte) []byte {
	d := &dcm{order: order, explicit: explicit}
	if charset != "" {
		d.el(0x0008, 0x0005, "CS", []byte(charset))
	}
	d.el(0x0008, 0x0020, "DA", []byte("20261120"))
	d.el(0x0008, 0x0060, "CS", []byte("CT"))
	d.sequence(0x0008, 0x1032)
	d.el(0x0008, 0x1030, "LO", description)
	d.el(0x0008, 0x103E, "LO", []byte("Axial 1.25mm\x00"))
	d.el(0x0010, 0x0010, "PN", []byte("WANG^XIUYING"))
	d.el(0x0018, 0x0015, "CS", []byte("CHEST"))
	d.el(0x0020, 0x000D, "UI", []byte("1.2.840.113619.2.55.3.604688119\x00"))
	d.el(0x0020, 0x000E, "UI", []byte("1.2.3.4"))
	d.header(0x7FE0, 0x0010, "OW", 400<<20) // pixel data the reader must never reach
	return d.buf.Bytes()
}

var wantCT = DicomTags{Modality: "CT", StudyDate: "20261120", BodyPart: "CHEST",
	StudyDescription: "CT CHEST", SeriesDescription: "Axial 1.25mm", StudyInstanceUID: "1.2.840.113619.2.55.3.604688119"}

// countingReader fails the test if more is read than the header.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestReadDicomTags(t *testing.T) {
	deflate := func(b []byte) []byte {
		var out bytes.Buffer
		w, _ := flate.NewWriter(&out, flate.DefaultCompression)
		w.Write(b)
		w.Close()
		return out.Bytes()
	}
	le, be := binary.LittleEndian, binary.BigEndian
	desc := []byte("CT CHEST")
	cases := []struct {
		name string
		file []byte
	}{
		{"explicit VR little endian", file("1.2.840.10008.1.2.1\x00", ctDataSet(le, true, "", desc), true)},
		{"implicit VR little endian", file("1.2.840.10008.1.2\x00", ctDataSet(le, false, "", desc), true)},
		{"explicit VR big endian", file("1.2.840.10008.1.2.2\x00", ctDataSet(be, true, "", desc), true)},
		{"deflated", file("1.2.840.10008.1.2.1.99", deflate(ctDataSet(le, true, "", desc)), true)},
		{"JPEG lossless (explicit little endian data set)", file("1.2.840.10008.1.2.4.70", ctDataSet(le, true, "", desc), true)},
		{"without the group length", file("1.2.840.10008.1.2.1\x00", ctDataSet(le, true, "", desc), false)},
		{"UTF-8 character set", file("1.2.840.10008.1.2.1\x00", ctDataSet(le, true, "ISO_IR 192", desc), true)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cr := &countingReader{r: bytes.NewReader(c.file)}
			got, err := ReadDicomTags(cr)
			if err != nil {
				t.Fatal(err)
			}
			if got != wantCT {
				t.Errorf("tags %+v, want %+v", got, wantCT)
			}
			if cr.n > len(c.file)+4096 {
				t.Errorf("read %d bytes", cr.n)
			}
		})
	}
}

func TestReadDicomTagsCharacterSets(t *testing.T) {
	gb, err := simplifiedchinese.GB18030.NewEncoder().Bytes([]byte("胸部CT平扫"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadDicomTags(bytes.NewReader(file("1.2.840.10008.1.2.1", ctDataSet(binary.LittleEndian, true, "GB18030", gb), true)))
	if err != nil || got.StudyDescription != "胸部CT平扫" {
		t.Errorf("GB18030 description: %q, %v", got.StudyDescription, err)
	}
	// Bytes that are text in no character set we know are left out; the
	// other tags are still read.
	got, err = ReadDicomTags(bytes.NewReader(file("1.2.840.10008.1.2.1", ctDataSet(binary.LittleEndian, true, "", gb), true)))
	if err != nil || got.StudyDescription != "" || got.Modality != "CT" {
		t.Errorf("undeclared GB18030: %+v, %v", got, err)
	}
	latin := []byte("T\xeate")
	got, _ = ReadDicomTags(bytes.NewReader(file("1.2.840.10008.1.2.1", ctDataSet(binary.LittleEndian, true, "ISO_IR 100", latin), true)))
	if got.StudyDescription != "Tête" {
		t.Errorf("Latin-1 description: %q", got.StudyDescription)
	}
}

func TestReadDicomTagsKeepsOnlyValidValues(t *testing.T) {
	d := &dcm{order: binary.LittleEndian, explicit: true}
	d.el(0x0008, 0x0020, "DA", []byte("2026-11-20"))
	d.el(0x0008, 0x0060, "CS", []byte("rtstruct"))
	d.el(0x0008, 0x1030, "LO", []byte(strings.Repeat("x", 65)))
	d.el(0x0020, 0x000D, "UI", []byte("1.2.abc"))
	got, err := ReadDicomTags(bytes.NewReader(file("1.2.840.10008.1.2.1", d.buf.Bytes(), true)))
	if err != nil {
		t.Fatal(err)
	}
	want := DicomTags{Modality: "RTSTRUCT"}
	if got != want {
		t.Errorf("tags %+v, want %+v", got, want)
	}
	// What the reader keeps always passes a session's checks.
	s := requested(ImagingReview)
	s.Attachments[1].Dicom = &got
	if err := s.Validate(); err != nil {
		t.Errorf("tags read make the attachment invalid: %v", err)
	}
}

func TestReadDicomTagsRefusals(t *testing.T) {
	good := file("1.2.840.10008.1.2.1", ctDataSet(binary.LittleEndian, true, "", []byte("CT")), true)
	cases := []struct {
		name string
		in   []byte
		not  bool // ErrNotDicom
	}{
		{"a PDF", []byte("%PDF-1.7\n" + strings.Repeat(" ", 200)), true},
		{"too short", []byte("DICM"), true},
		{"no magic", append(make([]byte, 128), []byte("DICX")...), true},
		{"cut inside the meta information", good[:150], false},
		{"cut inside an element", good[:len(good)-len(ctDataSet(binary.LittleEndian, true, "", []byte("CT")))+20], false},
	}
	for _, c := range cases {
		_, err := ReadDicomTags(bytes.NewReader(c.in))
		switch {
		case err == nil:
			t.Errorf("%s: read", c.name)
		case c.not != errors.Is(err, ErrNotDicom):
			t.Errorf("%s: %v", c.name, err)
		}
	}
	// A data set that ends after its first tags is complete, not cut.
	d := &dcm{order: binary.LittleEndian, explicit: true}
	d.el(0x0008, 0x0060, "CS", []byte("MR"))
	if got, err := ReadDicomTags(bytes.NewReader(file("1.2.840.10008.1.2.1", d.buf.Bytes(), true))); err != nil || got.Modality != "MR" {
		t.Errorf("short data set: %+v %v", got, err)
	}
}
