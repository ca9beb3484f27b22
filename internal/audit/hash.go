package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"strconv"

	"duikou/internal/sqldb"
)

// Chains is how many independent hash chains the log is spread over.
// Each appending transaction holds one chain's head until it commits, so
// several chains let that many transactions append at once; each chain is
// verified on its own. The number is part of the stored data: changing it
// would leave rows on chains the verifier no longer expects.
const Chains = 16

// HashSize is the length of every hash in the log (SHA-256).
const HashSize = sha256.Size

// GenesisHash is the prev_hash of the first row of every chain.
func GenesisHash() []byte { return make([]byte, HashSize) }

// ChainHash is the hash of e linked to the row before it:
//
//	SHA-256(prev || field || field || …)
//
// over chain, chain_seq, at (sqldb.TimeFormat, UTC, microseconds), actor_id,
// actor_hospital_id, action, resource_type, resource_id, patient_id, outcome,
// request_id, client_addr and detail. Each field is written as its length
// (4 bytes, big-endian) followed by its bytes, so that no two different
// entries encode alike (moving text from one field into the next changes
// the lengths). Seq is not covered: it is the database's row number, which
// may skip values, and order within a chain is chain_seq.
func ChainHash(prev []byte, e Entry) []byte {
	h := sha256.New()
	h.Write(prev)
	h.Write(LinkEncoding(e.Chain, e.ChainSeq))
	h.Write(ContentEncoding(e))
	return h.Sum(nil)
}

// LinkEncoding is the part of the hashed bytes that places a row in its
// chain: chain and chain_seq, as ChainHash writes them.
func LinkEncoding(chain int, chainSeq int64) []byte {
	var b []byte
	b = appendField(b, strconv.Itoa(chain))
	return appendField(b, strconv.FormatInt(chainSeq, 10))
}

// ContentEncoding is the rest of the hashed bytes, every field after
// chain_seq, as ChainHash writes them. It does not depend on where the row
// lands in its chain, so it can be computed before the chain is known: the
// PostgreSQL store sends it with the statement that claims a head and
// finishes the hash there (SHA-256 of the head's hash, the link fields
// encoded alike, and these bytes).
func ContentEncoding(e Entry) []byte {
	b := make([]byte, 0, 256)
	for _, f := range []string{e.At.UTC().Format(sqldb.TimeFormat), e.ActorID, e.ActorHospitalID, e.Action,
		e.ResourceType, e.ResourceID, e.PatientID, string(e.Outcome), e.RequestID, e.ClientAddr, e.Detail} {
		b = appendField(b, f)
	}
	return b
}

// appendField writes s as its length (4 bytes, big-endian) and its bytes.
func appendField(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}
