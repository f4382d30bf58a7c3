-- Compose mode only: the postgres image runs this once, on an empty data directory, as
-- POSTGRES_USER. Each service, and the gateway (accounts, API keys, audit), owns one database
-- and nobody else reads it (DESIGN.md, Storage); the *-migrate one-shots then create the tables.
-- A data volume created before crm_gateway existed does not rerun this script: create it once
-- with `docker compose exec postgres createdb -U crm crm_gateway`.
CREATE DATABASE crm_customer;
CREATE DATABASE crm_engagement;
CREATE DATABASE crm_scoring;
CREATE DATABASE crm_gateway;
