// Package kv connects Duikou to Redis: the home of derived state (queues,
// leases, pub/sub, presence, rate limits) that can always be rebuilt from the
// database. With no REDIS_URL it starts an in-process Redis-compatible server
// and the same go-redis client talks to it over loopback, so every Redis code
// path is the same code in both modes.
package kv

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Conn is a Redis client and how to let it go.
type Conn struct {
	*redis.Client
	// Embedded is set when the server runs inside this process.
	Embedded bool
	// Prefix starts every key this deployment writes, so several deployments
	// (or test runs) can share one Redis.
	Prefix string
	stop   func()
	hub    hub // Listen's shared pub/sub connection
}

// Open connects to url, or starts the embedded server when url is empty.
func Open(ctx context.Context, url, prefix string) (*Conn, error) {
	if url == "" {
		m := miniredis.NewMiniRedis()
		if err := m.StartAddr("127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("start embedded redis: %w", err)
		}
		c := redis.NewClient(&redis.Options{Addr: m.Addr(), Protocol: 2})
		return &Conn{Client: c, Embedded: true, Prefix: prefix, stop: m.Close}, nil
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		// The URL may hold a password: never echo it.
		return nil, errors.New("parse redis url: invalid URL")
	}
	c := redis.NewClient(opt)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := c.Ping(pctx).Err(); err != nil {
		c.Close()
		return nil, fmt.Errorf("connect redis: %w", err)
	}
	return &Conn{Client: c, Prefix: prefix, stop: func() {}}, nil
}

// Key joins the deployment prefix and parts with ':'.
func (c *Conn) Key(parts ...string) string {
	k := c.Prefix
	for _, p := range parts {
		if k != "" {
			k += ":"
		}
		k += p
	}
	return k
}

// Close closes the client and stops the embedded server.
func (c *Conn) Close() error {
	c.hub.close()
	err := c.Client.Close()
	if c.stop != nil {
		c.stop()
	}
	return err
}
