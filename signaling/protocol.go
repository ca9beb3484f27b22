package signaling

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Message is every frame on the WebSocket, both ways. Seq numbers each
// side's messages in order: a client's must increase (a repeat or an older
// one is refused, so a message replayed after a reconnect is not applied
// twice); the server's let the client spot a gap. Re, on the server's
// answers, names the client message it answers.
type Message struct {
	Type    string          `json:"type"`
	Seq     uint64          `json:"seq"`
	Re      uint64          `json:"re,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// Client → server message types.
const (
	TJoin      = "join"       // JoinPayload: the first message, unless the token came in the subprotocol
	TResume    = "resume"     // ResumePayload: the first message of a reconnect within the window
	TAnswer    = "answer"     // SDPPayload: the answer to the server's offer
	TOffer     = "offer"      // SDPPayload: server → client (the server always offers)
	TCandidate = "candidate"  // CandidatePayload: trickle ICE, both ways
	TLeave     = "leave"      // no payload
	TMute      = "mute"       // MutePayload; server → client as the participant's new state
	TChat      = "chat"       // ChatPayload, both ways
	THand      = "hand"       // HandPayload, both ways
	TAdmit     = "admit"      // TargetPayload (host)
	TRemove    = "remove"     // TargetPayload (host)
	TViewport  = "viewport"   // ViewState, presenter → server → everyone
	TPresent   = "present"    // TargetPayload: hand the presenter role over; server → client: PresenterPayload
	TAudioOnly = "audio_only" // AudioOnlyPayload: a weak link asks for audio only
)

// Server → client message types.
const (
	TWelcome          = "welcome"  // WelcomePayload: admitted to the room
	TLobby            = "lobby"    // waiting for a host
	TError            = "error"    // ErrorPayload
	TRedirect         = "redirect" // RedirectPayload: the room lives on another instance
	TRemoved          = "removed"  // a host removed this participant
	TJoined           = "participant_joined"
	TLeft             = "participant_left"
	TLobbyWaiting     = "lobby_waiting" // to hosts: someone waits
	TLobbyLeft        = "lobby_left"    // to hosts: admitted, removed or gone
	TTrackPublished   = "track_published"
	TTrackUnpublished = "track_unpublished"
	TSpeaking         = "speaking" // SpeakingPayload
	TQuality          = "quality"
)

// Limits of what a client may send.
const (
	maxText        = 2000 // chat
	maxID          = 64
	maxAnnotations = 100
	maxSDP         = 12000 // under the 16 KiB read limit with room for the envelope
)

// JoinPayload opens a connection.
type JoinPayload struct {
	Room  string `json:"room"`
	Token string `json:"token,omitempty"` // absent when it came in Sec-WebSocket-Protocol
	// NoMedia joins for the room's messages only (chat, hands, the shared
	// imaging view): the server opens no PeerConnection for the
	// participant, which costs it several times the memory of the
	// WebSocket. A later join without it brings the media.
	NoMedia bool `json:"no_media,omitempty"`
}

// ResumePayload takes a dropped participant's place back.
type ResumePayload struct {
	Room        string `json:"room"`
	Participant string `json:"participant"`
	Secret      string `json:"secret"`
}

// SDPPayload carries an offer or answer.
type SDPPayload struct {
	SDP string `json:"sdp"`
}

// CandidatePayload is one trickled ICE candidate (as RTCIceCandidateInit).
type CandidatePayload struct {
	Candidate     string  `json:"candidate"`
	SDPMid        *string `json:"sdpMid,omitempty"`
	SDPMLineIndex *uint16 `json:"sdpMLineIndex,omitempty"`
}

// MutePayload is a participant's own mute state (server → client adds who).
type MutePayload struct {
	Participant string `json:"participant,omitempty"`
	Audio       bool   `json:"audio"`
	Video       bool   `json:"video"`
}

// ChatPayload is a chat line (server → client adds who and when).
type ChatPayload struct {
	From string `json:"from,omitempty"`
	Name string `json:"name,omitempty"`
	Text string `json:"text"`
	At   int64  `json:"at,omitempty"` // unix ms
}

// HandPayload raises or lowers a hand.
type HandPayload struct {
	Participant string `json:"participant,omitempty"`
	Raised      bool   `json:"raised"`
}

// TargetPayload names another participant (admit, remove, present).
type TargetPayload struct {
	Participant string `json:"participant"`
}

// AudioOnlyPayload switches a participant's subscriptions to audio only.
type AudioOnlyPayload struct {
	On bool `json:"on"`
}

// ViewState is the presenter's imaging viewer: what every follower shows.
// It is sent whole (a few hundred bytes), so a follower that missed one
// message is right again with the next and a late joiner needs only the last.
type ViewState struct {
	Study       string       `json:"study,omitempty"`
	Series      string       `json:"series,omitempty"`
	Image       string       `json:"image,omitempty"`
	Slice       int          `json:"slice"`
	WindowC     float64      `json:"window_center"`
	WindowW     float64      `json:"window_width"`
	Zoom        float64      `json:"zoom"`
	PanX        float64      `json:"pan_x"`
	PanY        float64      `json:"pan_y"`
	Annotations []Annotation `json:"annotations,omitempty"`
}

// Annotation is one mark on the image, in image pixel coordinates.
type Annotation struct {
	ID   string    `json:"id"`
	Kind string    `json:"kind"` // arrow, ellipse, length, text
	Pts  []float64 `json:"pts"`  // x1,y1,x2,y2 (text: x,y)
	Text string    `json:"text,omitempty"`
}

// ViewportEvent is a ViewState as the server relays it: VSeq is the room's
// own order of views, so a follower applies only a newer one.
type ViewportEvent struct {
	VSeq      uint64    `json:"vseq"`
	Presenter string    `json:"presenter"`
	State     ViewState `json:"state"`
}

// PresenterPayload names the presenter ("" when nobody presents).
type PresenterPayload struct {
	Participant string `json:"participant"`
}

// ParticipantInfo is one participant as the others see it.
type ParticipantInfo struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Hospital string `json:"hospital,omitempty"`
	Perms    Perms  `json:"perms"`
	Audio    bool   `json:"audio_muted,omitempty"`
	Video    bool   `json:"video_muted,omitempty"`
	Hand     bool   `json:"hand,omitempty"`
	Away     bool   `json:"away,omitempty"` // dropped, inside the resume window
}

// TrackInfo is one published track.
type TrackInfo struct {
	Participant string `json:"participant"`
	Track       string `json:"track"` // the track id subscribers see
	Kind        string `json:"kind"`  // audio or video
}

// WelcomePayload is the room as a participant enters it.
type WelcomePayload struct {
	Room         string            `json:"room"`
	Participant  string            `json:"participant"`
	Secret       string            `json:"secret"` // resume secret: keep it for a reconnect
	ResumeWithin int               `json:"resume_within_s"`
	Participants []ParticipantInfo `json:"participants"`
	Lobby        []ParticipantInfo `json:"lobby,omitempty"` // hosts only
	Tracks       []TrackInfo       `json:"tracks,omitempty"`
	Presenter    string            `json:"presenter,omitempty"`
	Resumed      bool              `json:"resumed,omitempty"`
}

// ErrorPayload says what was refused.
type ErrorPayload struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// RedirectPayload sends a client to the instance that hosts the room.
type RedirectPayload struct {
	URL string `json:"url"`
}

// SpeakingPayload says who starts or stops speaking.
type SpeakingPayload struct {
	Participant string `json:"participant"`
	Speaking    bool   `json:"speaking"`
}

// QualityPayload reports what a subscriber's receiver reports say.
type QualityPayload struct {
	Participant string  `json:"participant"`
	Track       string  `json:"track"`
	Loss        float64 `json:"loss"` // fraction lost, 0..1
}

// errInvalid is a message the server refuses without closing.
type errInvalid struct{ msg string }

func (e errInvalid) Error() string { return e.msg }

func invalid(format string, a ...any) error { return errInvalid{fmt.Sprintf(format, a...)} }

// decodeStrict decodes a payload refusing unknown fields and trailing data,
// as the HTTP API does: a misspelt field is an error, not a silent default.
func decodeStrict(raw json.RawMessage, v any) error {
	if len(raw) == 0 {
		return invalid("payload is required")
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return invalid("payload: %v", err)
	}
	if d.More() {
		return invalid("payload: trailing data")
	}
	return nil
}

// parseMessage decodes and checks a client frame's envelope.
func parseMessage(b []byte) (Message, error) {
	var m Message
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&m); err != nil {
		return Message{}, invalid("message: %v", err)
	}
	if m.Type == "" {
		return Message{}, invalid("message: type is required")
	}
	if m.Seq == 0 {
		return Message{}, invalid("message: seq is required and starts at 1")
	}
	return m, nil
}

func checkID(field, s string) error {
	if s == "" || len(s) > maxID || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return invalid("%s must be 1–%d printable characters", field, maxID)
	}
	return nil
}

func checkText(field, s string, required bool, max int) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case !utf8.ValidString(s):
		return "", invalid("%s is not valid UTF-8 text", field)
	case strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) && r != '\n' }):
		return "", invalid("%s must not contain control characters", field)
	case required && s == "":
		return "", invalid("%s is required", field)
	case utf8.RuneCountInString(s) > max:
		return "", invalid("%s must be at most %d characters", field, max)
	}
	return s, nil
}

func finite(vs ...float64) bool {
	for _, v := range vs {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}

// Validate checks a view state a presenter sends.
func (v *ViewState) Validate() error {
	for f, s := range map[string]string{"study": v.Study, "series": v.Series, "image": v.Image} {
		if s != "" {
			if err := checkID(f, s); err != nil {
				return err
			}
		}
	}
	if v.Slice < 0 {
		return invalid("slice must not be negative")
	}
	if !finite(v.WindowC, v.WindowW, v.Zoom, v.PanX, v.PanY) || v.WindowW < 0 || v.Zoom < 0 || v.Zoom > 64 {
		return invalid("window, zoom and pan must be finite; width ≥ 0; zoom 0–64")
	}
	if len(v.Annotations) > maxAnnotations {
		return invalid("at most %d annotations", maxAnnotations)
	}
	for i := range v.Annotations {
		a := &v.Annotations[i]
		if err := checkID("annotation id", a.ID); err != nil {
			return err
		}
		want := 4
		switch a.Kind {
		case "arrow", "ellipse", "length":
		case "text":
			want = 2
			t, err := checkText("annotation text", a.Text, true, 200)
			if err != nil {
				return err
			}
			a.Text = t
		default:
			return invalid("annotation kind must be arrow, ellipse, length or text")
		}
		if len(a.Pts) != want || !finite(a.Pts...) {
			return invalid("annotation %s needs %d finite coordinates", a.Kind, want)
		}
		if a.Kind != "text" {
			t, err := checkText("annotation label", a.Text, false, 200)
			if err != nil {
				return err
			}
			a.Text = t
		}
	}
	return nil
}
