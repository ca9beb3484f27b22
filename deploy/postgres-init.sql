-- Creates the PostgreSQL role and database Duikou uses (idempotent).
-- Run as a superuser, passing the new role's password:
--   sudo -u postgres psql -v password='...' < deploy/postgres-init.sql
-- Duikou creates and migrates its tables itself. The role owns its database
-- but is not a superuser.
\set ON_ERROR_STOP on

SELECT format('CREATE ROLE duikou LOGIN PASSWORD %L', :'password')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'duikou')
\gexec

SELECT 'CREATE DATABASE duikou OWNER duikou ENCODING ''UTF8'' TEMPLATE template0'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'duikou')
\gexec

REVOKE ALL ON DATABASE duikou FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE duikou TO duikou;
