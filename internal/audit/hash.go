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
	var lenBuf [4]byte
	field := func(s string) {
		binary.BigEndian.PutUint32(lenBuf[:], uint32(len(s)))
		h.Write(lenBuf[:])
		h.Write([]byte(s))
	}
	field(strconv.Itoa(e.Chain))
	field(strconv.FormatInt(e.ChainSeq, 10))
	field(e.At.UTC().Format(sqldb.TimeFormat))
	field(e.ActorID)
	field(e.ActorHospitalID)
	field(e.Action)
	field(e.ResourceType)
	field(e.ResourceID)
	field(e.PatientID)
	field(string(e.Outcome))
	field(e.RequestID)
	field(e.ClientAddr)
	field(e.Detail)
	return h.Sum(nil)
}
