// Package signaling runs remote sessions' live side: short-lived join
// tokens, the WebSocket signalling protocol, rooms with a lobby and a
// presenter's shared imaging view, several instances placed through Redis,
// TURN credentials and a built-in TURN server; signaling/sfu is the media
// relay. It knows nothing of HTTP routing or SQL: the join route
// (authenticated, authorised and audited by its caller) asks a Granter for a
// Grant, and the WebSocket endpoint is a plain http.Handler (Server).
//
// A connection, as a client sees it:
//
//  1. POST …/join (elsewhere) → {token, url, ice_servers}. The token lives
//     at most MaxTokenTTL and names the room, the participant and its
//     permissions (publish, subscribe, present, admit).
//  2. Open the WebSocket at url from an allowed Origin, offering the
//     subprotocol "duikou.v1" (and, optionally, "duikou.token.<token>").
//  3. Send {"type":"join","seq":1,"payload":{"room":…,"token":…}} (token
//     omitted when it went in the header; "no_media":true to follow the
//     room's messages without a PeerConnection). Every client message carries a
//     type and a seq that increases; server messages have their own seq and
//     name the client message they answer in "re".
//  4. A participant with admit gets "welcome" (participants, lobby, tracks,
//     presenter, resume secret) and, if a view is shared, "viewport" at
//     once; anyone else gets "lobby" and waits, the server refusing all but
//     "leave", until a host sends "admit" (or "remove").
//  5. Media: the server offers ("offer"), the client answers ("answer");
//     both trickle "candidate". The server offers again whenever tracks
//     come or go; the client never offers. "audio_only" drops video.
//  6. A dropped connection keeps its place for the resume window (20 s):
//     a new connection sends "resume" with the participant and secret
//     instead of "join", and the same PeerConnection carries on. After the
//     window it must join again with a fresh token.
//  7. Refusals close with 4401 (no, bad or expired token), 4403 (another
//     room, removed), 4400, 4429 (message flood), 4408 (too slow to read),
//     4409 (replaced by a newer connection), 4410 (too late to resume),
//     4307 after a "redirect" to the instance hosting the room, 1009 for a
//     message over the read limit.
//
// The server tells its owner who is present through Config.OnJoin and
// OnLeave (admission to leaving, in order, off the rooms' locks), so the
// caller can record attendance without this package knowing storage.
package signaling
