-- Compose mode only: the postgres image runs this once, on an empty data directory, as
-- POSTGRES_USER. Each service owns one database and nobody else reads it (DESIGN.md, Storage);
-- the *-migrate one-shots then create the tables.
CREATE DATABASE crm_customer;
CREATE DATABASE crm_engagement;
CREATE DATABASE crm_scoring;
