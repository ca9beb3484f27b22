package sfu

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// slogFactory sends pion's logs to the server's structured logger, warnings
// and errors only: pion's info and debug lines are per packet or per ICE
// check, and would drown everything else.
type slogFactory struct{ log *slog.Logger }

func (f slogFactory) NewLogger(scope string) logging.LeveledLogger {
	return slogLeveled{f.log.With("pion", scope)}
}

type slogLeveled struct{ log *slog.Logger }

func (l slogLeveled) Trace(string)          {}
func (l slogLeveled) Tracef(string, ...any) {}
func (l slogLeveled) Debug(string)          {}
func (l slogLeveled) Debugf(string, ...any) {}
func (l slogLeveled) Info(string)           {}
func (l slogLeveled) Infof(string, ...any)  {}
func (l slogLeveled) Warn(msg string)       { l.log.Log(context.Background(), slog.LevelWarn, msg) }
func (l slogLeveled) Warnf(format string, args ...any) {
	l.log.Log(context.Background(), slog.LevelWarn, fmt.Sprintf(format, args...))
}
func (l slogLeveled) Error(msg string) { l.log.Log(context.Background(), slog.LevelError, msg) }
func (l slogLeveled) Errorf(format string, args ...any) {
	l.log.Log(context.Background(), slog.LevelError, fmt.Sprintf(format, args...))
}
