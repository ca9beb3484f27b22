package app

import (
	"context"
	"log/slog"
	"testing"

	"duikou/internal/config"
	"duikou/internal/directory"
)

func TestInitAdminCreatesTheFirstAdministratorOnce(t *testing.T) {
	ctx := context.Background()
	a, err := New(ctx, config.Config{DataDir: t.TempDir(), RedisPrefix: "init"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	org := directory.HospitalInput{Name: "某省卫生健康委员会", OrgCode: "11520000MB0000001Y", Tier: "authority", Province: "某省"}

	created, err := a.InitAdmin(ctx, org, "root.admin", "系统管理员", "a-long-first-password")
	if err != nil || !created {
		t.Fatalf("first init: created=%v err=%v", created, err)
	}
	res, err := a.svc.auth.Login(ctx, "root.admin", "a-long-first-password", "127.0.0.1", "test")
	if err != nil || !res.Principal.Has("admin") {
		t.Fatalf("the new administrator cannot log in: %v %+v", err, res.Principal)
	}
	created, err = a.InitAdmin(ctx, org, "second.admin", "另一位", "another-long-password")
	if err != nil || created {
		t.Fatalf("second init must change nothing: created=%v err=%v", created, err)
	}
	if _, err := a.InitAdmin(ctx, directory.HospitalInput{Name: "x", OrgCode: "bad", Tier: "authority", Province: "某省"}, "x.admin", "x", "a-long-first-password"); err == nil {
		t.Fatal("an invalid organisation must be refused")
	}
}
