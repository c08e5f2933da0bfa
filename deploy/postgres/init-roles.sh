#!/bin/sh
# Run once by the postgres image on an empty data directory (docker-entrypoint-initdb.d):
# each service's login role with its password, so the services connect as themselves over
# the network (the migrations create the roles without a password, for local trust auth).
set -eu
# keys: the key store of personal data (shared/privacy/keys.py), not a service.
for service in intake routing notifications audit keys; do
  var=$(echo "$service" | tr '[:lower:]' '[:upper:]')_DATABASE_PASSWORD
  password=$(printenv "$var")
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v role="hrcase_$service" -v password="$password" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
SQL
done
