package consult

import (
	"bufio"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/simplifiedchinese"

	"duikou/internal/apperr"
)

// ErrNotDicom: the file is not a DICOM Part 10 file (no "DICM" after the
// 128-byte preamble); it can still be attached, only not as kind dicom.
var ErrNotDicom = errors.New("consult: not a DICOM file")

// dicomHeaderLimit bounds what ReadDicomTags reads: the tags it wants sit at
// the start of the data set, before any pixel data, so a file whose header
// runs longer than this is refused rather than read to its end.
const dicomHeaderLimit = 8 << 20

// Transfer syntaxes whose data set is not explicit VR little endian.
const (
	implicitLittle = "1.2.840.10008.1.2"
	explicitBig    = "1.2.840.10008.1.2.2"
	deflated       = "1.2.840.10008.1.2.1.99"
)

type dicomTag uint32

func tagOf(group, element uint16) dicomTag { return dicomTag(group)<<16 | dicomTag(element) }

const (
	tagTransferSyntax    dicomTag = 0x0002_0010
	tagCharacterSet      dicomTag = 0x0008_0005
	tagStudyDate         dicomTag = 0x0008_0020
	tagModality          dicomTag = 0x0008_0060
	tagStudyDescription  dicomTag = 0x0008_1030
	tagSeriesDescription dicomTag = 0x0008_103E
	tagBodyPart          dicomTag = 0x0018_0015
	tagStudyInstanceUID  dicomTag = 0x0020_000D
	tagItem              dicomTag = 0xFFFE_E000
	tagItemEnd           dicomTag = 0xFFFE_E00D
	tagSequenceEnd       dicomTag = 0xFFFE_E0DD
	undefinedLength               = 0xFFFF_FFFF
)

// ReadDicomTags reads the basic tags of a DICOM Part 10 file, as an upload
// does before storing the file: modality, study date, body part, study and
// series description, study instance UID. It reads only the file meta
// information and the start of the data set, up to the last tag it wants,
// so a large series is not read through. Implicit and explicit VR, little
// and big endian and deflated data sets are understood. A tag whose value
// cannot be shown as text (an unknown character set, an over-long or
// malformed value) is left empty rather than failing the file: the tags
// describe the file, the file itself is what matters.
func ReadDicomTags(r io.Reader) (DicomTags, error) {
	br := bufio.NewReader(io.LimitReader(r, dicomHeaderLimit))
	var pre [132]byte
	if _, err := io.ReadFull(br, pre[:]); err != nil || string(pre[128:]) != "DICM" {
		return DicomTags{}, ErrNotDicom
	}
	syntax, err := readMeta(br)
	if err != nil {
		return DicomTags{}, fmt.Errorf("consult: DICOM file meta information: %w", err)
	}

	ds := &dicomReader{r: br, order: binary.LittleEndian, explicit: true}
	switch syntax {
	case implicitLittle:
		ds.explicit = false
	case explicitBig:
		ds.order = binary.BigEndian
	case deflated:
		ds.r = bufio.NewReader(flate.NewReader(br))
	}
	raw := map[dicomTag][]byte{}
	for {
		tag, _, n, err := ds.header()
		if errors.Is(err, io.EOF) {
			break // a data set may end right after the tags it has
		}
		if err != nil {
			return DicomTags{}, fmt.Errorf("consult: DICOM data set: %w", err)
		}
		if tag > tagStudyInstanceUID {
			break // elements come in tag order: nothing wanted follows
		}
		switch {
		case n == undefinedLength:
			err = ds.skipSequence()
		case tag == tagCharacterSet || tag == tagStudyDate || tag == tagModality || tag == tagStudyDescription ||
			tag == tagSeriesDescription || tag == tagBodyPart || tag == tagStudyInstanceUID:
			var v []byte
			if v, err = ds.value(n); err == nil {
				raw[tag] = v
			}
		default:
			err = ds.skip(n)
		}
		if err != nil {
			return DicomTags{}, fmt.Errorf("consult: DICOM data set: %w", err)
		}
	}

	decode := textDecoder(strings.TrimRight(string(raw[tagCharacterSet]), " \x00"))
	text := func(t dicomTag, max int) string {
		s := strings.Trim(decode(raw[t]), " \x00")
		if !utf8.ValidString(s) || utf8.RuneCountInString(s) > max || strings.ContainsFunc(s, isControl) {
			return ""
		}
		return s
	}
	d := DicomTags{
		Modality:          strings.ToUpper(text(tagModality, 16)),
		StudyDate:         text(tagStudyDate, 8),
		BodyPart:          text(tagBodyPart, 16),
		StudyDescription:  text(tagStudyDescription, 64),
		SeriesDescription: text(tagSeriesDescription, 64),
		StudyInstanceUID:  text(tagStudyInstanceUID, 64),
	}
	// Keep only what passes the checks a session applies, so the tags read
	// never make the attachment invalid.
	var faults apperr.Invalid
	probe := d
	checkDicom(&faults, "", &probe)
	for _, f := range faults {
		switch f.Field {
		case ".modality":
			d.Modality = ""
		case ".study_date":
			d.StudyDate = ""
		case ".study_instance_uid":
			d.StudyInstanceUID = ""
		}
	}
	return d, nil
}

// readMeta reads the file meta information (group 0002, always explicit VR
// little endian) and returns the transfer syntax of the data set. Its
// length comes from the group length element (0002,0000), which every
// conformant file has first; without it the group is read while the next
// tag is still of group 0002.
func readMeta(br *bufio.Reader) (string, error) {
	meta := &dicomReader{r: br, order: binary.LittleEndian, explicit: true}
	if peek, err := br.Peek(12); err == nil && string(peek[:6]) == "\x02\x00\x00\x00UL" {
		if _, _, _, err := meta.header(); err != nil {
			return "", err
		}
		var l [4]byte
		if _, err := io.ReadFull(br, l[:]); err != nil {
			return "", unexpected(err)
		}
		n := binary.LittleEndian.Uint32(l[:])
		if n > maxMeta {
			return "", errors.New("file meta information too long")
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(br, buf); err != nil {
			return "", unexpected(err)
		}
		meta.r = bufio.NewReader(bytes.NewReader(buf))
	}
	syntax := ""
	for {
		if meta.r == br {
			peek, err := br.Peek(2)
			if err != nil {
				return "", unexpected(err)
			}
			if binary.LittleEndian.Uint16(peek) != 0x0002 {
				return syntax, nil
			}
		}
		tag, _, n, err := meta.header()
		switch {
		case errors.Is(err, io.EOF):
			return syntax, nil // the end of the group's bytes
		case err != nil:
			return "", err
		case n == undefinedLength:
			return "", errors.New("an element of undefined length")
		case tag == tagTransferSyntax:
			v, err := meta.value(n)
			if err != nil {
				return "", err
			}
			syntax = strings.TrimRight(string(v), " \x00")
		default:
			if err := meta.skip(n); err != nil {
				return "", err
			}
		}
	}
}

// maxMeta bounds the file meta information: a few UIDs and names.
const maxMeta = 64 << 10

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// textDecoder turns raw tag bytes into text in the file's character set
// (0008,0005). Chinese PACS write GB18030 (or its subset GBK); UTF-8 and
// plain ASCII are taken as they are; Latin-1 is converted. Multi-valued
// character sets with code extensions are not handled: their text is
// returned as is and dropped if it is not valid UTF-8.
func textDecoder(charset string) func([]byte) string {
	switch {
	case strings.Contains(charset, "GB18030"), strings.Contains(charset, "GBK"):
		return func(b []byte) string {
			out, err := simplifiedchinese.GB18030.NewDecoder().Bytes(b)
			if err != nil {
				return ""
			}
			return string(out)
		}
	case charset == "ISO_IR 100":
		return func(b []byte) string {
			out, err := charmap.ISO8859_1.NewDecoder().Bytes(b)
			if err != nil {
				return ""
			}
			return string(out)
		}
	}
	return func(b []byte) string { return string(b) }
}

// dicomReader reads data elements in one encoding.
type dicomReader struct {
	r        *bufio.Reader
	order    binary.ByteOrder
	explicit bool
}

// longVRs have a 2-byte reserved field and a 4-byte length in explicit VR.
var longVRs = map[string]bool{"OB": true, "OD": true, "OF": true, "OL": true, "OV": true, "OW": true,
	"SQ": true, "SV": true, "UC": true, "UN": true, "UR": true, "UT": true, "UV": true}

// header reads an element's tag, VR (explicit only) and value length.
// Item and delimitation tags have no VR in any encoding.
func (d *dicomReader) header() (dicomTag, string, uint32, error) {
	var b [8]byte
	if _, err := io.ReadFull(d.r, b[:4]); err != nil {
		if errors.Is(err, io.EOF) {
			return 0, "", 0, io.EOF
		}
		return 0, "", 0, unexpected(err)
	}
	tag := tagOf(d.order.Uint16(b[0:2]), d.order.Uint16(b[2:4]))
	if !d.explicit || tag>>16 == 0xFFFE {
		if _, err := io.ReadFull(d.r, b[4:8]); err != nil {
			return 0, "", 0, unexpected(err)
		}
		return tag, "", d.order.Uint32(b[4:8]), nil
	}
	if _, err := io.ReadFull(d.r, b[4:8]); err != nil {
		return 0, "", 0, unexpected(err)
	}
	vr := string(b[4:6])
	if !longVRs[vr] {
		return tag, vr, uint32(d.order.Uint16(b[6:8])), nil
	}
	var l [4]byte
	if _, err := io.ReadFull(d.r, l[:]); err != nil {
		return 0, "", 0, unexpected(err)
	}
	return tag, vr, d.order.Uint32(l[:]), nil
}

// maxTagValue bounds a wanted tag's value: the longest (a description) is
// 64 characters, a few bytes each.
const maxTagValue = 1024

func (d *dicomReader) value(n uint32) ([]byte, error) {
	if n > maxTagValue {
		return nil, d.skip(n) // not a value worth showing; the file goes on
	}
	v := make([]byte, n)
	if _, err := io.ReadFull(d.r, v); err != nil {
		return nil, unexpected(err)
	}
	return v, nil
}

func (d *dicomReader) skip(n uint32) error {
	if _, err := d.r.Discard(int(n)); err != nil {
		return unexpected(err)
	}
	return nil
}

// skipSequence passes over a sequence of undefined length: items of defined
// length are skipped whole, items of undefined length element by element
// (their own sequences recursively), up to the sequence delimiter.
func (d *dicomReader) skipSequence() error {
	for depth := 0; ; {
		tag, _, n, err := d.header()
		if err != nil {
			return unexpected(err)
		}
		switch {
		case tag == tagSequenceEnd:
			if depth == 0 {
				return nil
			}
			depth--
		case tag == tagItemEnd:
		case tag == tagItem && n != undefinedLength:
			if err := d.skip(n); err != nil {
				return err
			}
		case tag == tagItem:
		case n == undefinedLength:
			depth++ // a nested sequence inside an undefined-length item
			if depth > 64 {
				return errors.New("sequences nested too deep")
			}
		default:
			if err := d.skip(n); err != nil {
				return err
			}
		}
	}
}

// unexpected reports a file that ends inside an element.
func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
