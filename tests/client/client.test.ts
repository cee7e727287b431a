// A client generated from openapi/openapi.json (openapi-typescript) drives a running capstats
// API with openapi-fetch: it signs in, creates an API token, lists, summarises and charts
// aggregates, starts an aggregation and polls its session until it completes. Every request
// and response is typed by the generated schema, so a drift between spec and server shows up
// here as a type error or a failed assertion.
//
// Environment: CAPSTATS_BASE_URL (e.g. http://127.0.0.1:8080), CAPSTATS_USERNAME,
// CAPSTATS_PASSWORD (an admin).

import { test } from "node:test";
import assert from "node:assert/strict";
import createClient from "openapi-fetch";
import type { paths } from "./generated/schema.js";

const baseUrl = required("CAPSTATS_BASE_URL");

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

/// Signs in with the session cookie and creates an API token; the rest uses the token. The
/// views that also answer CSV (`format=csv`) declare both media types; a client asks for the
/// JSON ones' types with its media type parameter.
async function tokenClient() {
  const cookieClient = createClient<paths>({ baseUrl });
  const login = await cookieClient.POST("/api/v1/auth/login", {
    body: { username: required("CAPSTATS_USERNAME"), password: required("CAPSTATS_PASSWORD") },
  });
  assert.equal(login.response.status, 200);
  assert.ok(login.data);
  const cookie = login.response.headers.get("set-cookie")?.split(";")[0];
  assert.ok(cookie, "the login sets a session cookie");
  const created = await cookieClient.POST("/api/v1/auth/tokens", {
    body: { name: "generated client", scopes: ["read", "operate"] },
    headers: { cookie, "X-CSRFToken": login.data.data.csrf_token },
  });
  assert.equal(created.response.status, 201);
  assert.ok(created.data);
  const token = created.data.data.token;
  const headers = { Authorization: `Bearer ${token}` };
  return {
    client: createClient<paths, "application/json">({ baseUrl, headers }),
    csvClient: createClient<paths, "text/csv">({ baseUrl, headers }),
  };
}

test("the generated client lists, summarises, charts and aggregates", async () => {
  const { client, csvClient } = await tokenClient();

  const me = await client.GET("/api/v1/auth/me");
  assert.equal(me.data?.data.authenticated_by, "token");

  const instances = await client.GET("/api/v1/capacity/instances", {
    params: { query: { period_type: "daily", limit: 5 } },
  });
  assert.equal(instances.response.status, 200);
  const page = instances.data!.data;
  assert.ok(page.items.length > 0 && page.items.length <= 5);
  assert.equal(page.limit, 5);
  assert.ok(page.total >= page.items.length);
  const first = page.items[0];
  assert.equal(typeof first.total_size_mb, "number");

  // The same view as a CSV file: its header row, then every row of the filter.
  const exported = await csvClient.GET("/api/v1/capacity/instances", {
    params: { query: { period_type: "daily", format: "csv" } },
    parseAs: "text",
  });
  assert.equal(exported.response.status, 200);
  assert.match(exported.response.headers.get("content-type") ?? "", /^text\/csv/);
  const lines = exported.data!.trimEnd().split("\n");
  assert.ok(lines[0].startsWith("instance_id,instance_name,db_type,period_type,period_start"));
  assert.equal(lines.length - 1, page.total, "every row of the filter");

  const databases = await client.GET("/api/v1/capacity/databases", {
    params: { query: { period_type: "weekly", instance_id: [first.instance_id], limit: 200 } },
  });
  assert.ok(databases.data!.data.items.every((item) => item.instance_id === first.instance_id));

  const summary = await client.GET("/api/v1/capacity/instances/summary", {
    params: { query: { time_range: 30 } },
  });
  assert.ok(summary.data!.data.summary.total_instances > 0);
  assert.equal(summary.data!.data.summary.source, "instance_size_stats");
  const databaseSummary = await client.GET("/api/v1/capacity/databases/summary", {
    params: { query: { period_type: "daily" } },
  });
  assert.ok(databaseSummary.data!.data.summary.total_databases > 0);

  const series = await client.GET("/api/v1/capacity/instances/series", {
    params: { query: { period_type: "daily", periods: 14, top: 5, metric: "total_size_mb" } },
  });
  assert.equal(series.data!.data.labels.length, 14);
  assert.ok(series.data!.data.series.length > 0);
  for (const line of series.data!.data.series) assert.equal(line.values.length, 14);

  // The spec's enum makes "hourly" a type error; sent anyway, the server refuses it too.
  const invalid = await client.GET("/api/v1/capacity/instances", {
    params: { query: { period_type: "hourly" as "daily" } },
  });
  assert.equal(invalid.response.status, 400);
  assert.equal(invalid.error?.message_code, "VALIDATION_ERROR");
  assert.equal(invalid.error?.errors?.[0]?.field, "period_type");

  const started = await client.POST("/api/v1/capacity/aggregations/current", {
    body: { scope: "all", period_type: "weekly" },
  });
  assert.equal(started.response.status, 202);
  const sessionId = started.data!.data.session_id!;
  assert.ok(started.response.headers.get("location")?.endsWith(`/sync-sessions/${sessionId}`));

  const deadline = Date.now() + 60_000;
  let status = "pending";
  while (Date.now() < deadline) {
    const session = await client.GET("/api/v1/sync-sessions/{id}", {
      params: { path: { id: sessionId } },
    });
    status = session.data!.data.session.status;
    if (status === "completed" || status === "failed") {
      assert.equal(session.data!.data.session.progress_percentage, 100);
      assert.ok(session.data!.data.records.every((record) => record.status === "completed"));
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  assert.equal(status, "completed");

  const schedules = await client.GET("/api/v1/scheduler/jobs");
  assert.ok(schedules.data!.data.some((schedule) => schedule.id === "aggregate_capacity"));
});
