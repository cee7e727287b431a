#!/usr/bin/env bash
# Drops what interrupted test runs left behind: PostgreSQL databases and MariaDB schemas and
# accounts whose names start with capstats_test_ (tests name everything they create so).
set -euo pipefail

server=$(echo "${DATABASE_URL:-postgres://root@127.0.0.1:5432}" | sed -E 's#^(postgres(ql)?://[^/]+).*#\1#')
for name in $(psql -At "$server/postgres" -c "SELECT datname FROM pg_database WHERE datname LIKE 'capstats\_test\_%'"); do
    psql -q "$server/postgres" -c "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)"
done

mysql_client=(mysql --protocol=tcp -h "${CAPSTATS_TEST_MYSQL_HOST:-127.0.0.1}" -u root -N -B)
if command -v mysql >/dev/null 2>&1 && "${mysql_client[@]}" -e 'SELECT 1' >/dev/null 2>&1; then
    "${mysql_client[@]}" -e "
        SELECT CONCAT('DROP DATABASE \`', schema_name, '\`;') FROM information_schema.schemata
        WHERE schema_name LIKE 'capstats\\_test\\_%';
        SELECT CONCAT('DROP USER \'', user, '\'@\'', host, '\';') FROM mysql.user
        WHERE user LIKE 'capstats\\_test\\_%';" | "${mysql_client[@]}"
fi
