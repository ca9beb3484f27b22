#!/bin/sh
# Used by deploy/compose.yaml: the postgres image runs this once, when it
# initialises an empty data volume. Creates the duikou role and database.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v password="$DUIKOU_DB_PASSWORD" -f /duikou/postgres-init.sql
