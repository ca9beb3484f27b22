package store_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"duikou/internal/sqldb"
	"duikou/internal/sqldb/sqldbtest"
	"duikou/internal/store"
)

func TestIdempotencyKeysClaimSaveAndExpire(t *testing.T) {
	sqldbtest.ForEach(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		keys := store.NewIdempotencyKeys(db, time.Hour)
		user := "0194f5c2-7b7e-7cc3-9a1e-6f2b9d1c0a01"
		t0 := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
		fp := []byte("fingerprint")

		err := db.InTx(ctx, func(ctx context.Context) error {
			prev, err := keys.Claim(ctx, user, "k", fp, t0)
			if err != nil || prev != nil {
				t.Fatalf("first claim: %v %v", prev, err)
			}
			return keys.Save(ctx, user, "k", store.IdempotentResponse{Fingerprint: fp, Status: 201, ContentType: "application/json", ETag: `"1"`, Body: []byte(`{"id":1}`)})
		})
		if err != nil {
			t.Fatal(err)
		}
		prev, err := keys.Claim(ctx, user, "k", fp, t0.Add(30*time.Minute))
		if err != nil || prev == nil || prev.Status != 201 || prev.ETag != `"1"` || !bytes.Equal(prev.Body, []byte(`{"id":1}`)) {
			t.Fatalf("second claim within the hour: %+v %v", prev, err)
		}
		if prev, err := keys.Claim(ctx, user, "k", fp, t0.Add(2*time.Hour)); err != nil || prev != nil {
			t.Fatalf("a key past its time is new again: %+v %v", prev, err)
		}
		n, err := keys.Expire(ctx, t0.Add(5*time.Hour))
		if err != nil || n != 1 {
			t.Fatalf("Expire removed %d, err %v", n, err)
		}
	})
}
