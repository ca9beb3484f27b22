// Package icd10 is the ICD-10 code list shipped with the product, so a
// doctor writing a referral finds a diagnosis by code or by its Chinese name
// without a terminology server. It is a curated list (codes.tsv): the common
// categories of every chapter and the subdivisions referrals carry most
// (acute coronary syndromes, stroke, trauma, obstetric and neonatal
// emergencies). A code outside the list is still accepted on a ticket: the
// referral checks the shape of a code, not its presence here.
package icd10

import (
	"bufio"
	_ "embed"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

//go:embed codes.tsv
var codesTSV string

// Code is one entry of the list.
type Code struct {
	Code string `json:"code"` // I21.0, I63
	Name string `json:"name"` // Simplified Chinese name
	En   string `json:"en"`   // English name
}

// List is a loaded code list; it is read-only after Load and safe for
// concurrent use.
type List struct {
	codes []Code
	// key is each code without its dot, upper-case, so "i210" finds I21.0.
	key []string
	en  []string // lower-cased English names
}

// Load parses the embedded list. It fails only if the shipped file is
// malformed, which a test guards.
func Load() (*List, error) { return parse(codesTSV) }

func parse(src string) (*List, error) {
	l := &List{}
	seen := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(src))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 3 || f[0] == "" || f[1] == "" || f[2] == "" {
			return nil, fmt.Errorf("icd10: line %d: want code, Chinese name and English name separated by tabs", n)
		}
		if seen[f[0]] {
			return nil, fmt.Errorf("icd10: line %d: %s listed twice", n, f[0])
		}
		seen[f[0]] = true
		l.codes = append(l.codes, Code{Code: f[0], Name: f[1], En: f[2]})
		l.key = append(l.key, strings.ReplaceAll(f[0], ".", ""))
		l.en = append(l.en, strings.ToLower(f[2]))
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return l, nil
}

// Len is the number of codes in the list.
func (l *List) Len() int { return len(l.codes) }

// MaxResults bounds one search's answer: a picker shows a screenful.
const MaxResults = 50

// Search finds codes by code (with or without the dot, any case: "i21",
// "I21.0", "s065") or by a part of the Chinese or English name ("心肌梗死",
// "infarction"; English from three letters on). Results are ranked: the exact code, then codes starting
// with the query, then names starting with it, then names containing it;
// within a rank in code order. At most limit results (1–MaxResults).
func (l *List) Search(q string, limit int) []Code {
	q = strings.TrimSpace(q)
	if q == "" || utf8.RuneCountInString(q) > 100 {
		return []Code{}
	}
	limit = min(max(limit, 1), MaxResults)
	codeQ := strings.ToUpper(strings.ReplaceAll(q, ".", ""))
	lowQ := strings.ToLower(q)
	// One or two Latin letters are the start of a code ("O", "S0"), not a
	// word: matching them inside English names would list half the book.
	words := len(q) >= 3
	type hit struct{ rank, i int }
	var hits []hit
	for i, c := range l.codes {
		rank := 0
		switch {
		case l.key[i] == codeQ:
			rank = 1
		case strings.HasPrefix(l.key[i], codeQ):
			rank = 2
		case strings.HasPrefix(c.Name, q) || words && strings.HasPrefix(l.en[i], lowQ):
			rank = 3
		case strings.Contains(c.Name, q) || words && strings.Contains(l.en[i], lowQ):
			rank = 4
		default:
			continue
		}
		hits = append(hits, hit{rank, i})
	}
	slices.SortStableFunc(hits, func(a, b hit) int { return a.rank - b.rank })
	out := make([]Code, 0, min(len(hits), limit))
	for _, h := range hits[:min(len(hits), limit)] {
		out = append(out, l.codes[h.i])
	}
	return out
}
